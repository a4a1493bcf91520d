/**
 * What Lambda does around a function, for the bundles of cdk.out run in this process: a cold start
 * (the function's environment set, then its bundle required in a fresh module registry), the context
 * object of an invocation, the function's log output, and the SQS event source mapping (receive a
 * batch, invoke, delete what did not fail).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import type { CfnTemplate } from './deployed';
import { ACCOUNT_ID, PARTITION, REGION } from './deployed-stack';

export type Handler<E, R> = (event: E, context: Context) => Promise<R>;

export interface DeployedFunction<E, R> {
  readonly functionName: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  readonly handler: Handler<E, R>;
}

/**
 * A cold start: sets the variables Lambda sets and the function's environment, then requires the
 * bundle's handler module in a fresh module registry (its top level reads the environment once, as
 * in Lambda). The bundle leaves @aws-sdk/* external: it resolves them from the project's
 * node_modules, as Lambda resolves them from the runtime.
 */
export function coldStart<E, R>(
  template: CfnTemplate,
  logicalId: string,
  bundleDir: string,
  functionName: string,
  environment: Readonly<Record<string, string>>,
): DeployedFunction<E, R> {
  const properties = template.Resources[logicalId]?.Properties ?? {};
  const [file, exportName] = splitHandler(String(properties.Handler));
  const timeoutSeconds = Number(properties.Timeout ?? 3);
  const memorySize = Number(properties.MemorySize ?? 128);
  Object.assign(process.env, environment, {
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySize),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_EXECUTION_ENV: `AWS_Lambda_${typeof properties.Runtime === 'string' ? properties.Runtime : 'nodejs'}`,
    AWS_DEFAULT_REGION: process.env.AWS_REGION,
    LAMBDA_TASK_ROOT: bundleDir,
    _HANDLER: String(properties.Handler),
  });
  let loaded: Record<string, unknown> = {};
  jest.isolateModules(() => {
    // isolateModules takes a synchronous function: the bundle is CommonJS, loaded as Lambda loads it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(join(bundleDir, file)) as Record<string, unknown>;
  });
  const handler = loaded[exportName];
  if (typeof handler !== 'function') throw new Error(`${bundleDir}/${file} exports no ${exportName}`);
  return { functionName, timeoutSeconds, memorySize, handler: handler as Handler<E, R> };
}

function splitHandler(handler: string): [string, string] {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new Error(`unexpected Handler ${handler}`);
  return [`${handler.slice(0, dot)}.js`, handler.slice(dot + 1)];
}

/**
 * Runs `during` on a later day: this realm's Date (which the bundles loaded in it use) is moved `days`
 * ahead, and back afterwards. Timers and the emulator's clock are left alone.
 */
export async function daysLater<T>(days: number, during: () => Promise<T>): Promise<T> {
  const RealDate = globalThis.Date;
  const offset = days * 86_400_000;
  class ShiftedDate extends RealDate {
    constructor(...args: ConstructorParameters<DateConstructor> | []) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...args);
    }
    static override now(): number {
      return RealDate.now() + offset;
    }
    // Dates made before the shift are dates too.
    static [Symbol.hasInstance](value: unknown): boolean {
      return value instanceof RealDate;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
  try {
    return await during();
  } finally {
    globalThis.Date = RealDate;
  }
}

/** The context object Lambda passes, for a function of moto's account. */
export function lambdaContext(
  fn: Pick<DeployedFunction<never, unknown>, 'functionName' | 'timeoutSeconds' | 'memorySize'>,
): Context {
  const deadline = Date.now() + fn.timeoutSeconds * 1000;
  const unsupported = () => {
    throw new Error('callback-style completion is not used by async handlers');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT_ID}:function:${fn.functionName}`,
    memoryLimitInMB: String(fn.memorySize),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn.functionName}`,
    logStreamName: `2026/01/01/[$LATEST]${randomUUID().replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/**
 * The functions' log output (Powertools writes JSON lines straight to stdout/stderr, as CloudWatch
 * Logs receives them): captured while `during` runs, and kept quiet.
 */
export class FunctionLogs {
  readonly lines: string[] = [];

  async capture<T>(during: () => Promise<T>): Promise<T> {
    const streams = [process.stdout, process.stderr] as const;
    const originals = streams.map((stream) => stream.write);
    for (const stream of streams) {
      stream.write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
        this.lines.push(
          ...String(chunk)
            .split('\n')
            .filter((line) => line.trim() !== ''),
        );
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      };
    }
    try {
      return await during();
    } finally {
      streams.forEach((stream, index) => (stream.write = originals[index]!));
    }
  }

  /** The JSON log entries (Powertools lines and EMF metrics). */
  entries(): Record<string, unknown>[] {
    return this.lines.flatMap<Record<string, unknown>>((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return isRecord(parsed) ? [parsed] : [];
      } catch {
        return [];
      }
    });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How one batch went. */
export interface BatchDelivery {
  readonly event: SQSEvent;
  readonly response: SQSBatchResponse;
  readonly deleted: readonly string[];
}

/**
 * The SQS event source mapping of a function with ReportBatchItemFailures: receives up to
 * `batchSize` messages from the queue with every attribute, invokes the function with them in
 * Lambda's record shape, deletes the records not reported in batchItemFailures, and repeats until
 * a receive comes back empty. A failed invocation stops the drain with its error (Lambda would
 * redeliver the whole batch after the visibility timeout).
 */
export async function drainQueue(
  sqs: SQSClient,
  queue: { readonly url: string; readonly arn: string },
  batchSize: number,
  invoke: (event: SQSEvent) => Promise<SQSBatchResponse>,
): Promise<BatchDelivery[]> {
  const deliveries: BatchDelivery[] = [];
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: batchSize,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return deliveries;
    const event: SQSEvent = { Records: messages.map((message) => sqsRecord(message, queue.arn)) };
    const response = (await invoke(event)) ?? { batchItemFailures: [] };
    const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    const done = event.Records.filter((record) => !failed.has(record.messageId));
    if (done.length > 0) {
      const result = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: done.map((record, index) => ({
            Id: String(index),
            ReceiptHandle: record.receiptHandle,
          })),
        }),
      );
      if ((result.Failed ?? []).length > 0) {
        throw new Error(`sqs:DeleteMessageBatch failed: ${JSON.stringify(result.Failed)}`);
      }
    }
    deliveries.push({ event, response, deleted: done.map((record) => record.messageId) });
  }
}

/** A received message as Lambda delivers it in an SQS event. */
export function sqsRecord(message: Message, queueArn: string): SQSRecord {
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: { ...message.Attributes } as unknown as SQSRecord['attributes'],
    messageAttributes: lambdaMessageAttributes(message.MessageAttributes ?? {}),
    md5OfBody: message.MD5OfBody!,
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3]!,
  };
}

function lambdaMessageAttributes(attributes: Record<string, MessageAttributeValue>): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        dataType: value.DataType ?? 'String',
        ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
        ...(value.BinaryValue !== undefined
          ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }
          : {}),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString('base64')),
      },
    ]),
  );
}
