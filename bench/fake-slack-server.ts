// The bench's fake Slack Web API in a process of its own, so the process that measures latency
// does nothing but send requests. Prints "listening <url>"; GET <url>/stats returns what it saw.
import { FakeSlack } from '../test/fakes/slack.js';

async function main() {
  const slack = await new FakeSlack({ U024ALICE: { email: 'alice@contoso.com' } }).start();
  process.stdout.write(`listening ${slack.url}\n`);
  process.on('SIGTERM', () => void slack.close().then(() => process.exit(0)));
}

void main();
