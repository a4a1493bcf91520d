/** IAM over the AWS SDK v3: the IamDirectory port. */
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GenerateCredentialReportCommand,
  GetAccessKeyLastUsedCommand,
  GetCredentialReportCommand,
  GetUserCommand,
  IAMClient,
  paginateListAccessKeys,
  paginateListUsers,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import {
  CredentialReportBusyError,
  CredentialReportUnavailableError,
  KeyLimitExceededError,
  NoSuchKeyError,
  NoSuchUserError,
} from '../domain/errors';
import type { AccessKey, KeyStatus, NewAccessKey } from '../domain/model';
import type { CredentialReportState, IamDirectory, UserDetails, UserSummary } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

const noSuchUser = (userName: string) => ({
  NoSuchEntityException: (message: string) =>
    new NoSuchUserError(`user ${userName} does not exist (${message})`),
});
const noSuchKey = (accessKeyId: string) => ({
  NoSuchEntityException: (message: string) =>
    new NoSuchKeyError(`access key ${accessKeyId} does not exist (${message})`),
});
const reportUnavailable = {
  CredentialReportNotPresentException: (message: string) => new CredentialReportUnavailableError(message),
  CredentialReportExpiredException: (message: string) => new CredentialReportUnavailableError(message),
  CredentialReportNotReadyException: (message: string) => new CredentialReportUnavailableError(message),
  ReportGenerationLimitExceededException: (message: string) => new CredentialReportUnavailableError(message),
};
/**
 * GenerateCredentialReport's only modeled error, LimitExceeded (HTTP 409): IAM has no capacity to start
 * another report generation for the account now. Not a permanent failure: the planner waits and asks
 * again within its report timeout, then lists users instead.
 */
const reportBusy = {
  ...reportUnavailable,
  LimitExceededException: (message: string) => new CredentialReportBusyError(message),
};

function pathOf(path: string | undefined): string {
  return path ?? '/';
}

export class IamAdapter implements IamDirectory {
  /**
   * @param client for every call but CreateAccessKey
   * @param createClient for CreateAccessKey, with a single attempt: the call is not idempotent, so an
   *   SDK retry after a lost response would create a second key (or be refused as over the limit while
   *   the first one exists). The service's own intent record handles an unknown outcome instead.
   */
  constructor(
    private readonly client: IAMClient = new IAMClient(SDK_CLIENT_CONFIG),
    private readonly createClient: IAMClient = new IAMClient({ ...SDK_CLIENT_CONFIG, maxAttempts: 1 }),
  ) {}

  async generateCredentialReport(): Promise<CredentialReportState> {
    const response = await call(
      'iam:GenerateCredentialReport',
      () => this.client.send(new GenerateCredentialReportCommand({})),
      reportBusy,
    );
    return response.State ?? 'STARTED';
  }

  async getCredentialReport(): Promise<{ csv: string; generatedAt?: Date }> {
    const response = await call(
      'iam:GetCredentialReport',
      () => this.client.send(new GetCredentialReportCommand({})),
      reportUnavailable,
    );
    if (!response.Content)
      throw new CredentialReportUnavailableError('iam:GetCredentialReport returned no content');
    return {
      csv: Buffer.from(response.Content).toString('utf8'),
      // Unknown when IAM omits it: the planner then compares keys rather than trust its age.
      generatedAt: response.GeneratedTime,
    };
  }

  async listUsers(): Promise<UserSummary[]> {
    const users: UserSummary[] = [];
    await call('iam:ListUsers', async () => {
      for await (const page of paginateListUsers({ client: this.client }, {})) {
        for (const user of page.Users ?? []) {
          users.push({ userName: user.UserName!, arn: user.Arn!, path: pathOf(user.Path) });
        }
      }
    });
    return users;
  }

  async getUser(userName: string): Promise<UserDetails> {
    const response = await call(
      'iam:GetUser',
      () => this.client.send(new GetUserCommand({ UserName: userName })),
      noSuchUser(userName),
    );
    const user = response.User!;
    const tags: Record<string, string> = {};
    for (const tag of user.Tags ?? []) {
      if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? '';
    }
    return { userName: user.UserName!, arn: user.Arn!, path: pathOf(user.Path), tags };
  }

  async listAccessKeys(userName: string): Promise<Omit<AccessKey, 'lastUsedDate'>[]> {
    const keys: Omit<AccessKey, 'lastUsedDate'>[] = [];
    await call(
      'iam:ListAccessKeys',
      async () => {
        for await (const page of paginateListAccessKeys({ client: this.client }, { UserName: userName })) {
          for (const key of page.AccessKeyMetadata ?? []) {
            keys.push({
              accessKeyId: key.AccessKeyId!,
              status: key.Status === 'Active' ? 'Active' : 'Inactive',
              createDate: key.CreateDate!,
            });
          }
        }
      },
      noSuchUser(userName),
    );
    return keys;
  }

  async getAccessKeyLastUsed(accessKeyId: string): Promise<Date | undefined> {
    const response = await call(
      'iam:GetAccessKeyLastUsed',
      () => this.client.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId })),
      noSuchKey(accessKeyId),
    );
    return response.AccessKeyLastUsed?.LastUsedDate ?? undefined;
  }

  async createAccessKey(userName: string): Promise<NewAccessKey> {
    const response = await call(
      'iam:CreateAccessKey',
      () => this.createClient.send(new CreateAccessKeyCommand({ UserName: userName })),
      {
        ...noSuchUser(userName),
        LimitExceededException: (message: string) =>
          new KeyLimitExceededError(`user ${userName} already has two access keys (${message})`),
      },
    );
    const key = response.AccessKey!;
    return {
      userName: key.UserName!,
      accessKeyId: key.AccessKeyId!,
      secretAccessKey: key.SecretAccessKey!,
      createDate: key.CreateDate ?? new Date(),
    };
  }

  async updateAccessKey(userName: string, accessKeyId: string, status: KeyStatus): Promise<void> {
    await call(
      'iam:UpdateAccessKey',
      () =>
        this.client.send(
          new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId, Status: status }),
        ),
      noSuchKey(accessKeyId),
    );
  }

  async deleteAccessKey(userName: string, accessKeyId: string): Promise<void> {
    await call(
      'iam:DeleteAccessKey',
      () => this.client.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: accessKeyId })),
      noSuchKey(accessKeyId),
    );
  }
}
