/**
 * A network that loses connections, between a spawned CLI and moto (the CLI reaches it through
 * AWS_ENDPOINT_URL). Everything passes through unchanged, except the calls told to fail:
 *
 * - `after`: the request reaches moto and takes effect, then the connection is dropped before the
 *   answer is passed on (what a timeout or a reset connection does to a call that had already
 *   landed: the caller cannot tell whether it did);
 * - `before`: the connection is dropped without passing the request on (nothing happens).
 *
 * The SDK sees a reset socket ("socket hang up"), as it would on AWS.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forward, readAll, send } from './deployed-relay';

export type Drop = 'after' | 'before';

interface Rule {
  readonly action: string;
  readonly drop: Drop;
  remaining: number;
}

export class FlakyNetwork {
  private rules: Rule[] = [];
  /** Every call passed on or dropped, by action (query `Action`, or the JSON protocols' operation). */
  readonly calls: string[] = [];
  /** The calls dropped, as `Action:after|before`. */
  readonly dropped: string[] = [];
  private readonly server: Server;

  private constructor(private readonly target: URL) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`flaky network: ${String(error)}`);
      });
    });
  }

  static async start(targetUrl: string): Promise<FlakyNetwork> {
    const network = new FlakyNetwork(new URL(targetUrl));
    await new Promise<void>((resolve) => network.server.listen(0, '127.0.0.1', resolve));
    return network;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next `times` calls of `action` lose their connection (`Infinity`: every one). */
  fail(action: string, drop: Drop, times = 1): void {
    this.rules.push({ action, drop, remaining: times });
  }

  /** Every call passes again, and the logs start afresh. */
  heal(): void {
    this.rules = [];
    this.calls.length = 0;
    this.dropped.length = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    const target = req.headers['x-amz-target'];
    const action =
      new URLSearchParams(body.toString('utf8')).get('Action') ??
      (typeof target === 'string' ? target.split('.').at(-1) : undefined) ??
      'unknown';
    this.calls.push(action);
    const rule = this.rules.find((candidate) => candidate.action === action && candidate.remaining > 0);
    if (rule) rule.remaining--;
    if (rule?.drop === 'before') {
      this.dropped.push(`${action}:before`);
      req.socket.destroy();
      return;
    }
    const upstream = await forward(this.target, req, body);
    if (rule?.drop === 'after') {
      this.dropped.push(`${action}:after`);
      req.socket.destroy();
      return;
    }
    send(res, upstream.status, upstream.headers, upstream.body);
  }
}
