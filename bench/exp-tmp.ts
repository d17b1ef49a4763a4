import { Redis } from 'ioredis';
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';
const r = new Redis('redis://127.0.0.1:6391');
const N = 10000;
const id = (i: number) => 'r' + (1e9 + i).toString(32).slice(-9).replace(/[ilou]/g, 'x');
const json = (i: number) => `{"id":"${id(i)}","requester":"req${i%10}@bench.example","target":"vm${i%10}","targetId":"/subscriptions/bench/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm${i%10}","ports":[{"port":3389,"protocol":"tcp"}],"source":"10.0.${i%250}.${i%200}/32","durationMs":7200000,"status":"active","decisions":[{"by":"ok@bench.example","decision":"approve","at":${1796304052339+i}}],"createdAt":${1796304052297+i},"updatedAt":${1796304052366+i},"approvalExpiresAt":${1796307652297+i},"rules":[{"name":"jit-${id(i)}-3389","scope":"/subscriptions/bench/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/vm${i%10}-nsg","priority":${100+i%1000},"direction":"Inbound","access":"Allow","protocol":"tcp","sourcePrefix":"10.0.${i%250}.${i%200}/32","destinationPort":3389,"description":"jit-bot request=${id(i)} expires=2026-12-03T15:20:52.351Z","requestId":"${id(i)}","expiresAt":${1796311252351+i}}],"origin":{"channel":"api"},"version":3,"activatedAt":${1796304052366+i},"expiresAt":${1796311252351+i}}`;
const dict = Buffer.from(json(123456));
async function measure(name: string, fn: (i: number, p: ReturnType<Redis['pipeline']>) => void) {
  await r.flushall();
  const m0 = Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
  for (let b = 0; b < N; b += 500) { const p = r.pipeline(); for (let i = b; i < b + 500; i++) fn(i, p); await p.exec(); }
  const m1 = Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
  let mu = 0; let cursor = '0';
  do { const [c, keys] = await r.scan(cursor, 'COUNT', 1000); cursor = c; const p = r.pipeline(); for (const k of keys) p.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'); for (const [, v] of (await p.exec())!) mu += Number(v); } while (cursor !== '0');
  console.log(`${name.padEnd(50)} used_memory/N ${((m1 - m0) / N).toFixed(0).padStart(6)}  MEMORY USAGE/N ${(mu / N).toFixed(0).padStart(6)}`);
}
console.log('json length', json(5).length, 'deflate', deflateRawSync(json(5), { level: 9 }).length, 'deflate+dict', deflateRawSync(json(5), { level: 9, dictionary: dict }).length);
await measure('req hash (v,json,status,requester,target)', (i, p) => p.hset(`jit:req:${id(i)}`, 'v', '3', 'json', json(i), 'status', 'active', 'requester', `req${i%10}@bench.example`, 'target', `vm${i%10}`));
await measure('req string json', (i, p) => p.set(`jit:req:${id(i)}`, json(i)));
await measure('req string deflate+dict', (i, p) => p.set(`jit:req:${id(i)}`, deflateRawSync(json(i), { level: 9, dictionary: dict })));
await measure('audit:req list 5 sids', (i, p) => p.rpush(`jit:audit:req:${id(i)}`, ...Array.from({length:5},(_, k) => `${1796304052298+i}-${k}`)));
await measure('zset 10k members (1 key)', (i, p) => p.zadd('jit:idx:all', 1796304052298+i, id(i)));
await measure('list 10k members (1 key)', (i, p) => p.rpush('jit:idx:all', id(i)));
await measure('zset 50k stream ids in 10 keys', (i, p) => { for (let k=0;k<5;k++) p.zadd(`jit:audit:target:vm${i%10}`, 1796304052298+i, `${1796304052298+i}-${k}`); });
await measure('list 50k stream ids in 10 keys', (i, p) => { for (let k=0;k<5;k++) p.rpush(`jit:audit:target:vm${i%10}`, `${1796304052298+i}-${k}`); });
await measure('job hash as now (hashtable)', (i, p) => p.hset(`jit-bull:jit-revoke:${id(i)}`, 'data', `{"requestId":"${id(i)}","dueAt":1796311252351}`, 'opts', `{"delay":7200000,"removeOnFail":{"age":604800},"jobId":"${id(i)}","removeOnComplete":true,"backoff":{"delay":1000,"type":"exponential"},"attempts":12}`, 'timestamp', '1796304052351', 'priority', '0', 'name', 'expire', 'delay', '7200000'));
await measure('job hash listpack', (i, p) => p.hset(`jit-bull:jit-revoke:${id(i)}`, 'data', `{"dueAt":1796311252351}`, 'opts', `{"delay":7200000,"jobId":"${id(i)}"}`, 'timestamp', '1796304052351', 'priority', '0', 'name', 'expire', 'delay', '7200000'));
await measure('job hash listpack, opts 64', (i, p) => p.hset(`jit-bull:jit-revoke:${id(i)}`, 'data', `{"requestId":"${id(i)}","dueAt":1796311252351}`, 'opts', `{"delay":7200000,"jobId":"${id(i)}","attempts":12,"backoff":{"type":"e"}}`.slice(0,64), 'timestamp', '1796304052351', 'priority', '0', 'name', 'expire', 'delay', '7200000'));
r.disconnect();
