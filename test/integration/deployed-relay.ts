/**
 * A relay between the deployed functions and moto (their SDK clients reach it through
 * AWS_ENDPOINT_URL). It passes every request and answer through unchanged but for three things:
 *
 * - Old keys on an emulator that can only make new ones: moto stamps every access key with its own
 *   clock, and neither it nor AWS can create a key in the past. Each SEEDED key is reported as created
 *   the given number of days before moto created it, wherever IAM tells a key's age: ListAccessKeys
 *   (CreateDate) and the credential report (access_key_N_last_rotated). Keys the service creates
 *   during the test keep their true, fresh dates; the service runs on the real clock.
 * - The credential report as AWS serves it: IAM generates a report at most every four hours and
 *   hands out the latest one until then; moto builds it afresh from live state on every
 *   GetCredentialReport. The relay keeps serving the first report it relayed for four hours.
 * - One clock: on a later day (the test moves this realm's Date ahead, see daysLater), each answer's
 *   HTTP Date header is that day's, as AWS's clock agrees with a Lambda's. With moto's real date
 *   there, the SDK would take the difference for clock skew and retry every error answer.
 */
import { createServer, IncomingMessage, request as httpRequest, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';

const MS_PER_DAY = 86_400_000;

interface SeededKey {
  readonly userName: string;
  readonly days: number;
}

/** IAM serves a generated credential report for this long before it generates a new one. */
const REPORT_REUSE_MS = 4 * 3_600_000;

export class EmulatorRelay {
  private readonly seeded = new Map<string, SeededKey>();
  /** IAM actions the relay rewrote, for the test to prove it was on the path. */
  readonly rewritten: string[] = [];
  /** Every action relayed (query `Action`, or the JSON protocols' `X-Amz-Target` operation). */
  readonly actions = new Set<string>();
  /** How many times a GetCredentialReport was answered with the report already served. */
  reportsServedAgain = 0;
  /** The report AWS would still be serving, and when it was generated. */
  private report?: { readonly body: Buffer; readonly headers: Headers; readonly at: number };

  private readonly server: Server;

  private constructor(
    private readonly target: URL,
    /** Reads moto directly (not through the relay), to learn the slot order of a user's keys. */
    private readonly direct: IAMClient,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`emulator relay: ${String(error)}`);
      });
    });
  }

  static async start(targetUrl: string): Promise<EmulatorRelay> {
    const relay = new EmulatorRelay(new URL(targetUrl), new IAMClient({ endpoint: targetUrl }));
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** From now on, IAM reports this key as `days` days older than moto made it. */
  backdate(userName: string, accessKeyId: string, days: number): void {
    this.seeded.set(accessKeyId, { userName, days });
  }

  async stop(): Promise<void> {
    this.direct.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestBody = await readAll(req);
    const action = new URLSearchParams(requestBody.toString('utf8')).get('Action');
    const target = req.headers['x-amz-target'];
    const operation = action ?? (typeof target === 'string' ? target.split('.').at(-1) : undefined);
    if (operation) this.actions.add(operation);
    if (action === 'GetCredentialReport' && this.report && Date.now() - this.report.at < REPORT_REUSE_MS) {
      this.reportsServedAgain++;
      return send(res, 200, this.report.headers, this.report.body);
    }
    const upstream = await forward(this.target, req, requestBody);
    let body = upstream.body;
    if (upstream.status === 200 && action === 'ListAccessKeys') {
      body = Buffer.from(this.rewriteKeyList(body.toString('utf8')));
      this.rewritten.push(action);
    } else if (upstream.status === 200 && action === 'GetCredentialReport') {
      body = Buffer.from(await this.rewriteReport(body.toString('utf8')));
      this.report = { body, headers: upstream.headers, at: Date.now() };
      this.rewritten.push(action);
    }
    send(res, upstream.status, upstream.headers, body);
  }

  /** `<member>` entries of ListAccessKeys: the CreateDate of each seeded key moved back. */
  private rewriteKeyList(xml: string): string {
    requireXml(xml, 'ListAccessKeys');
    return xml.replace(/<member>([\s\S]*?)<\/member>/g, (member: string, inner: string) => {
      const keyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(inner)?.[1];
      const seeded = keyId ? this.seeded.get(keyId) : undefined;
      if (!seeded) return member;
      return member.replace(
        /<CreateDate>([^<]+)<\/CreateDate>/,
        (_all, date: string) => `<CreateDate>${shifted(date, seeded.days).toISOString()}</CreateDate>`,
      );
    });
  }

  /**
   * The report names no key ids, only slots 1 and 2: moto fills them in the order ListAccessKeys
   * returns a user's keys, so that order (read from moto directly) says which seeded key is where.
   */
  private async rewriteReport(xml: string): Promise<string> {
    requireXml(xml, 'GetCredentialReport');
    const match = /<Content>([^<]*)<\/Content>/.exec(xml);
    if (!match) return xml;
    const lines = Buffer.from(match[1]!, 'base64').toString('utf8').split('\n');
    const header = lines[0]!.split(',');
    const userColumn = header.indexOf('user');
    const slotColumns = [1, 2].map((slot) => header.indexOf(`access_key_${slot}_last_rotated`));
    const users = new Set([...this.seeded.values()].map((key) => key.userName));
    const rewritten: string[] = [lines[0]!];
    for (const line of lines.slice(1)) {
      const cells = line.split(',');
      const userName = cells[userColumn];
      if (userName === undefined || !users.has(userName)) {
        rewritten.push(line);
        continue;
      }
      const listed = await this.direct.send(new ListAccessKeysCommand({ UserName: userName }));
      (listed.AccessKeyMetadata ?? []).forEach((key, index) => {
        const seeded = this.seeded.get(key.AccessKeyId!);
        const column = slotColumns[index];
        if (!seeded || column === undefined || column < 0 || cells[column] === 'N/A') return;
        // AWS's format in the report: seconds, with an explicit +00:00 offset.
        cells[column] = `${shifted(cells[column]!, seeded.days).toISOString().slice(0, 19)}+00:00`;
      });
      rewritten.push(cells.join(','));
    }
    const content = Buffer.from(rewritten.join('\n'), 'utf8').toString('base64');
    return xml.replace(match[0], `<Content>${content}</Content>`);
  }
}

export type Headers = Record<string, string | string[] | undefined>;

export function send(res: ServerResponse, status: number, upstreamHeaders: Headers, body: Buffer): void {
  const headers: Headers = {
    ...upstreamHeaders,
    'content-length': String(body.length),
    date: new Date().toUTCString(),
  };
  delete headers['transfer-encoding'];
  res.writeHead(status, headers);
  res.end(body);
}

function shifted(date: string, days: number): Date {
  const parsed = new Date(date);
  if (Number.isNaN(parsed.getTime())) throw new Error(`emulator relay: unreadable date ${date}`);
  return new Date(parsed.getTime() - days * MS_PER_DAY);
}

/** The relay knows IAM's query protocol (XML answers); anything else must fail loudly, not pass old dates. */
function requireXml(body: string, action: string): void {
  if (!body.trimStart().startsWith('<')) {
    throw new Error(`emulator relay: ${action} answered in a format it cannot rewrite`);
  }
}

export function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export function forward(
  target: URL,
  req: IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (response) => {
        readAll(response).then(
          (data) => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: data }),
          reject,
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
