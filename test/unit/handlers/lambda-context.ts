import type { Context, SQSRecord } from 'aws-lambda';

export const ACCOUNT = '111122223333';

export function lambdaContext(functionName: string, requestId = 'req-1'): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]abc',
    // A fresh invocation of the rotator (15-minute timeout).
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A record as SQS FIFO delivers it to Lambda. */
export function fifoRecord(messageId: string, body: string, groupId: string, receiveCount = 1): SQSRecord {
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '1767232800000',
      SenderId: 'AROAEXAMPLE:planner',
      ApproximateFirstReceiveTimestamp: '1767232800001',
      SequenceNumber: `1872349823749823${messageId.length}`,
      MessageGroupId: groupId,
      MessageDeduplicationId: `dedup-${messageId}`,
    },
    messageAttributes: {},
    md5OfBody: 'not-checked',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:eu-west-1:${ACCOUNT}:iam-key-rotation-work.fifo`,
    awsRegion: 'eu-west-1',
  };
}

/** Everything the function prints: Powertools logs (stdout, errors on stderr) and EMF metrics, as JSON lines. */
export function captureOutput(): {
  lines: () => Record<string, unknown>[];
  text: () => string;
  restore: () => void;
} {
  const chunks: string[] = [];
  const record = (chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  const spies = [
    jest.spyOn(process.stdout, 'write').mockImplementation(record),
    jest.spyOn(process.stderr, 'write').mockImplementation(record),
  ];
  const text = () => chunks.join('');
  return {
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.trim().startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    restore: () => spies.forEach((spy) => spy.mockRestore()),
  };
}
