import { createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { IAMClient } from '@aws-sdk/client-iam';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { SDK_CLIENT_CONFIG } from '../../../lambda/adapters/sdk-config';
import { TransientServiceError } from '../../../lambda/domain/errors';

/** A local endpoint that accepts connections and never answers (no AWS is involved). */
let server: Server;
const sockets: Socket[] = [];
beforeAll(async () => {
  server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  sockets.forEach((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('every client gives up on a silent endpoint instead of waiting for the Lambda timeout', () => {
  expect(SDK_CLIENT_CONFIG.requestHandler).toMatchObject({
    requestTimeout: 30_000,
    throwOnRequestTimeout: true,
  });
});

test('a request that gets no answer fails as a transient error (retried later), not a hang', async () => {
  const port = (server.address() as AddressInfo).port;
  const iam = new IamAdapter(
    new IAMClient({
      ...SDK_CLIENT_CONFIG,
      requestHandler: { ...SDK_CLIENT_CONFIG.requestHandler, requestTimeout: 300 },
      maxAttempts: 1,
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
  );
  const started = Date.now();

  await expect(iam.listAccessKeys('alice')).rejects.toBeInstanceOf(TransientServiceError);
  expect(Date.now() - started).toBeLessThan(5_000);
});

test('CreateAccessKey is sent once: an SDK retry after a lost response could create a second key', async () => {
  const iam = new IamAdapter();
  const clients = iam as unknown as Record<'client' | 'createClient', IAMClient>;

  expect(await clients.createClient.config.maxAttempts()).toBe(1);
  expect(await clients.client.config.maxAttempts()).toBe(8);
});
