// The peer for bench/slack-ack.ts: a bare Bolt app whose /jit listener only acks, mounted the same
// way jit-bot mounts Bolt (HTTPReceiver on a plain node:http server). PORT and SLACK_SIGNING_SECRET
// from the environment; prints "listening" when ready.
import { createServer } from 'node:http';
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';

const secret = process.env.SLACK_SIGNING_SECRET ?? '';
const receiver = new HTTPReceiver({ signingSecret: secret, endpoints: '/slack/events', logLevel: LogLevel.ERROR });
// Bolt's defaults: one auth.test at start (answered by the bench's fake Slack).
const app = new App({ token: 'xoxb-bare', receiver, logLevel: LogLevel.ERROR, ...(process.env.SLACK_API_URL ? { clientOptions: { slackApiUrl: process.env.SLACK_API_URL } } : {}) });
app.command('/jit', async ({ ack }) => {
  await ack();
});
const server = createServer((req, res) => receiver.requestListener(req, res));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
