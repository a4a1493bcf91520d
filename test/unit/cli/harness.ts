/** Runs the CLI's main function as a terminal would, and bridges mocked SDK clients to the fakes. */
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GenerateCredentialReportCommand,
  GetAccessKeyLastUsedCommand,
  GetCredentialReportCommand,
  GetUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import type { Resources } from '../../../cli/connect';
import { settingsFor } from '../../../cli/connect';
import { main, Wiring } from '../../../cli/main';
import type { World } from '../../fakes/world';
import { SECRET_PREFIX } from '../../fakes/world';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function keyrot(argv: string, wiring?: Wiring, isTTY = false): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    isTTY,
  };
  const args = argv.split(' ').filter((word) => word.length > 0);
  const code = await main(args, io, wiring);
  return { code, stdout, stderr };
}

/** The role the operator runs --apply as in these tests (the stack's secretAdminRoleArn). */
export const ADMIN_ROLE = (accountId: string) => `arn:aws:iam::${accountId}:role/ops/secrets-admin`;
/** A session of that role, as STS GetCallerIdentity names it (no path). */
export const ADMIN_SESSION = (accountId: string) =>
  `arn:aws:sts::${accountId}:assumed-role/secrets-admin/operator`;

/**
 * The CLI wired to one in-memory account, with the stack's resources known. `accountId` is the
 * account the connection works on: the world's unless a test simulates a mistaken one.
 */
export function worldWiring(
  world: World,
  resources: Resources = {
    table: 'ledger',
    topicArn: 'topic',
    secretPrefix: SECRET_PREFIX,
    kmsKeyArn: 'key',
  },
  accountId: string = world.accountId,
): Wiring {
  return {
    connect: (options) =>
      Promise.resolve({
        accountId,
        caller: { account: world.accountId, arn: ADMIN_SESSION(world.accountId) },
        clock: world.clock,
        settings: settingsFor(options, resources),
        resources,
        iam: world.iam,
        ledger: world.ledger,
      }),
    forWriting: (connection) => ({
      ...connection,
      secretPrefix: SECRET_PREFIX,
      verifier: world.verifier,
      vault: world.vault,
      notifier: world.notifier,
    }),
  };
}

/**
 * Mocked IAM and STS SDK clients that answer from the fake account, so the real adapters run. The
 * operator's credentials are `callerArn` (an IAM user by default).
 */
export function mockIamFrom(world: World, callerArn = `arn:aws:iam::${world.accountId}:user/operator`) {
  // A report generated moments ago, as IAM keeps it for four hours: no polling wait in tests.
  world.iam.reportGenerationPolls = 0;
  const iam = mockClient(IAMClient);
  const sts = mockClient(STSClient);
  sts.on(GetCallerIdentityCommand).resolves({
    Account: world.accountId,
    Arn: callerArn,
    UserId: 'AIDAOPERATOR',
  });
  iam
    .on(GenerateCredentialReportCommand)
    .callsFake(async () => ({ State: await world.iam.generateCredentialReport() }));
  iam.on(GetCredentialReportCommand).callsFake(async () => {
    const report = await world.iam.getCredentialReport();
    return {
      Content: new TextEncoder().encode(report.csv),
      GeneratedTime: report.generatedAt,
      ReportFormat: 'text/csv',
    };
  });
  iam.on(ListUsersCommand).callsFake(async () => ({
    Users: (await world.iam.listUsers()).map((user) => ({
      UserName: user.userName,
      Arn: user.arn,
      Path: user.path,
      UserId: 'AIDA',
      CreateDate: new Date(0),
    })),
    IsTruncated: false,
  }));
  iam.on(GetUserCommand).callsFake(async (input: { UserName: string }) => {
    const user = await world.iam.getUser(input.UserName);
    return {
      User: {
        UserName: user.userName,
        Arn: user.arn,
        Path: user.path,
        UserId: 'AIDA',
        CreateDate: new Date(0),
        Tags: Object.entries(user.tags).map(([Key, Value]) => ({ Key, Value })),
      },
    };
  });
  iam.on(ListAccessKeysCommand).callsFake(async (input: { UserName: string }) => ({
    AccessKeyMetadata: (await world.iam.listAccessKeys(input.UserName)).map((key) => ({
      UserName: input.UserName,
      AccessKeyId: key.accessKeyId,
      Status: key.status,
      CreateDate: key.createDate,
    })),
    IsTruncated: false,
  }));
  iam.on(GetAccessKeyLastUsedCommand).callsFake(async (input: { AccessKeyId: string }) => ({
    AccessKeyLastUsed: {
      LastUsedDate: await world.iam.getAccessKeyLastUsed(input.AccessKeyId),
      Region: 'N/A',
      ServiceName: 'N/A',
    },
  }));
  const refuse = () => Promise.reject(new Error('a read-only command must not call this'));
  iam.on(CreateAccessKeyCommand).callsFake(refuse);
  iam.on(UpdateAccessKeyCommand).callsFake(refuse);
  iam.on(DeleteAccessKeyCommand).callsFake(refuse);
  return { iam, sts };
}
