/** STS over the AWS SDK v3: proves new credentials work (the KeyVerifier port). */
import { GetCallerIdentityCommand, STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { CredentialsNotYetValidError } from '../domain/errors';
import type { KeyCredentials } from '../domain/model';
import type { KeyVerifier } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

const notYetValid = (message: string) => new CredentialsNotYetValidError(message);

export class StsVerifier implements KeyVerifier {
  /** `config` is shared by every verification client (region, endpoint); credentials are per call. */
  constructor(
    private readonly config: STSClientConfig = {},
    private readonly makeClient: (config: STSClientConfig) => STSClient = (config) => new STSClient(config),
  ) {}

  async callerIdentity(credentials: KeyCredentials): Promise<{ arn: string; account: string }> {
    // One attempt per call: the service retries with its own backoff while IAM propagates the key.
    const client = this.makeClient({
      requestHandler: SDK_CLIENT_CONFIG.requestHandler,
      ...this.config,
      maxAttempts: 1,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    });
    try {
      const response = await call(
        'sts:GetCallerIdentity',
        () => client.send(new GetCallerIdentityCommand({})),
        {
          InvalidClientTokenId: notYetValid,
          InvalidClientTokenIdException: notYetValid,
          SignatureDoesNotMatch: notYetValid,
          SignatureDoesNotMatchException: notYetValid,
          UnrecognizedClientException: notYetValid,
          AuthFailure: notYetValid,
        },
      );
      return { arn: response.Arn ?? '', account: response.Account ?? '' };
    } finally {
      client.destroy();
    }
  }
}
