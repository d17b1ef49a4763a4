// Raw HTTP for the attack tests: any Host header, any proxy header, any body (fetch forbids some).
import { request } from 'node:http';
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export function raw(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * A same-host reverse proxy as nginx's `proxy_pass http://127.0.0.1:<port>` sets it up: every
 * request it gets is forwarded to the target from 127.0.0.1, with `X-Real-IP` and
 * `X-Forwarded-For` naming the outside client. Anyone who reaches the proxy is "local" to a
 * server that trusts the peer address.
 */
export async function reverseProxy(target: string, outsideClient = '198.51.100.66'): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const server: Server = createServer((req, res) => {
    const headers = { ...req.headers, host: t.host, 'x-real-ip': outsideClient, 'x-forwarded-for': outsideClient, 'x-forwarded-proto': 'https' };
    const up = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A TCP tunnel (ssh -L, socat, a TCP-mode ngrok): bytes forwarded as they are, no header added.
 * Nothing in the request tells it apart from a local one: only the secret can.
 */
export async function tcpTunnel(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const open = new Set<{ destroy(): void }>();
  const server: TcpServer = createTcpServer((socket) => {
    const up = connect(Number(t.port), t.hostname);
    open.add(socket).add(up);
    socket.pipe(up).pipe(socket);
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const s of open) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
