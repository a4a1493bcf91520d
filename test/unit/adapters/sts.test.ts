import {
  GetCallerIdentityCommand,
  STSClient,
  STSClientConfig,
  STSServiceException,
} from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { StsVerifier } from '../../../lambda/adapters/sts';
import {
  AccessDeniedError,
  CredentialsNotYetValidError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { everythingIn, rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sts = mockClient(STSClient);

const NEW_KEY = {
  accessKeyId: 'AKIANEWKEY000000001',
  secretAccessKey: 'NewSecret/abcdefghijklmnopqrstuvwxyz0123',
};

/** A client factory that keeps each config it was given and each client it built. */
function recordingFactory() {
  const configs: STSClientConfig[] = [];
  const clients: { destroyed: boolean }[] = [];
  const makeClient = (config: STSClientConfig): STSClient => {
    configs.push(config);
    const client = new STSClient(config);
    const record = { destroyed: false };
    clients.push(record);
    const destroy = client.destroy.bind(client);
    client.destroy = () => {
      record.destroyed = true;
      destroy();
    };
    return client;
  };
  return { configs, clients, makeClient };
}

function stsError(name: string, message: string): STSServiceException {
  return new STSServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 403 } });
}

beforeEach(() => sts.reset());
afterAll(() => sts.restore());

describe('StsVerifier.callerIdentity', () => {
  test('builds a client with exactly the given credentials and one attempt, and returns arn and account', async () => {
    const factory = recordingFactory();
    const verifier = new StsVerifier({ region: 'eu-west-1' }, factory.makeClient);
    sts.on(GetCallerIdentityCommand).resolves({
      Arn: 'arn:aws:iam::123456789012:user/alice',
      Account: '123456789012',
      UserId: 'AIDAEXAMPLE',
    });

    const identity = await verifier.callerIdentity(NEW_KEY);

    expect(identity).toEqual({ arn: 'arn:aws:iam::123456789012:user/alice', account: '123456789012' });
    expect(factory.configs).toEqual([
      {
        region: 'eu-west-1',
        maxAttempts: 1,
        credentials: { accessKeyId: NEW_KEY.accessKeyId, secretAccessKey: NEW_KEY.secretAccessKey },
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
      },
    ]);
    expect(sts.commandCalls(GetCallerIdentityCommand).map((c) => c.args[0].input)).toEqual([{}]);
    expect(factory.clients).toEqual([{ destroyed: true }]);
  });

  test('the given credentials win over any in the shared config, and only the key fields are passed', async () => {
    const factory = recordingFactory();
    const verifier = new StsVerifier(
      {
        region: 'eu-west-1',
        maxAttempts: 8,
        credentials: {
          accessKeyId: 'AKIASERVICEROLE0001',
          secretAccessKey: 'service',
          sessionToken: 'token',
        },
      },
      factory.makeClient,
    );
    sts
      .on(GetCallerIdentityCommand)
      .resolves({ Arn: 'arn:aws:iam::123456789012:user/alice', Account: '123456789012' });

    await verifier.callerIdentity({ ...NEW_KEY, extra: 'ignored' } as typeof NEW_KEY);

    expect(factory.configs[0]?.maxAttempts).toBe(1);
    expect(factory.configs[0]?.credentials).toEqual({
      accessKeyId: NEW_KEY.accessKeyId,
      secretAccessKey: NEW_KEY.secretAccessKey,
    });
  });

  test('every call gets its own client', async () => {
    const factory = recordingFactory();
    const verifier = new StsVerifier({ region: 'eu-west-1' }, factory.makeClient);
    sts
      .on(GetCallerIdentityCommand)
      .resolves({ Arn: 'arn:aws:iam::123456789012:user/a', Account: '123456789012' });
    const other = { accessKeyId: 'AKIAOTHERKEY0000002', secretAccessKey: 'other-secret' };

    await verifier.callerIdentity(NEW_KEY);
    await verifier.callerIdentity(other);

    expect(factory.configs.map((c) => c.credentials)).toEqual([
      { accessKeyId: NEW_KEY.accessKeyId, secretAccessKey: NEW_KEY.secretAccessKey },
      { accessKeyId: other.accessKeyId, secretAccessKey: other.secretAccessKey },
    ]);
    expect(factory.clients).toEqual([{ destroyed: true }, { destroyed: true }]);
  });

  test.each(['InvalidClientTokenId', 'SignatureDoesNotMatch'])(
    '%s (key not propagated yet) is a retryable CredentialsNotYetValidError, and the client is destroyed',
    async (name) => {
      const factory = recordingFactory();
      const verifier = new StsVerifier({ region: 'eu-west-1' }, factory.makeClient);
      const sdk = stsError(name, 'The security token included in the request is invalid.');
      sts.on(GetCallerIdentityCommand).rejects(sdk);

      const error = await rejectionOf(() => verifier.callerIdentity(NEW_KEY));

      expect(error).toBeInstanceOf(CredentialsNotYetValidError);
      expect((error as CredentialsNotYetValidError).retryable).toBe(true);
      expect((error as Error).cause).toBe(sdk);
      expect(factory.clients).toEqual([{ destroyed: true }]);
    },
  );

  test.each([
    ['Throttling', () => sdkError('Throttling', { fault: 'client' }), ThrottledError],
    ['AccessDenied', () => sdkError('AccessDenied', { fault: 'client', status: 403 }), AccessDeniedError],
    ['TimeoutError', timeoutError, TransientServiceError],
    [
      'server fault',
      () => sdkError('InternalFailure', { fault: 'server', status: 500 }),
      TransientServiceError,
    ],
  ] as const)('%s maps to its engine error', async (_name, make, expected) => {
    const verifier = new StsVerifier({ region: 'eu-west-1' }, recordingFactory().makeClient);
    sts.on(GetCallerIdentityCommand).rejects(make());

    await expect(verifier.callerIdentity(NEW_KEY)).rejects.toThrow(expected);
  });

  test('a failure does not carry the secret access key in its message or properties', async () => {
    const verifier = new StsVerifier({ region: 'eu-west-1' }, recordingFactory().makeClient);
    sts
      .on(GetCallerIdentityCommand)
      .rejects(stsError('InvalidClientTokenId', 'The security token is invalid.'));

    const error = await rejectionOf(() => verifier.callerIdentity(NEW_KEY));

    expect(everythingIn(error)).not.toContain(NEW_KEY.secretAccessKey);
  });
});
