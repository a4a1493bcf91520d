/**
 * MemberCredentials (production code) against the emulator's STS: a session of a member account's
 * role, and SDK clients built with it acting in that account, not in the caller's.
 *
 * moto differs from AWS here (see test/integration/README.md): AssumeRole checks neither that the role
 * exists nor its trust policy (so no role is created in the member account, and AccessDenied cannot
 * be produced: the unit tests cover the error mapping), and it enforces no SourceIdentity rule, no
 * session limit and no throttling. What it does model is the account: IAM calls signed with the
 * session's credentials act in the role's account.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateUserCommand, IAMClient, ListUsersCommand } from '@aws-sdk/client-iam';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { MemberCredentials } from '../../../lambda/adapters/member-credentials';
import { ACCOUNT } from './fixtures';

const MEMBER = '111122223333';
const RUN_ID = '2026-12-03T06:00:00.000Z';

const central = new IAMClient({});
const members = new MemberCredentials({ memberRoleName: 'iam-key-rotation-member', partition: 'aws' });
const credentials = members.forAccount(MEMBER, RUN_ID);
const memberIam = new IAMClient({ credentials });
const memberSts = new STSClient({ credentials });
const memberCreate = new IAMClient({ credentials, maxAttempts: 1 });

afterAll(() => {
  central.destroy();
  memberIam.destroy();
  memberSts.destroy();
  memberCreate.destroy();
});

const userNames = async (client: IAMClient) =>
  ((await client.send(new ListUsersCommand({}))).Users ?? []).map((user) => user.UserName);

test('the session is the member role in the member account, named after the run', async () => {
  const identity = await memberSts.send(new GetCallerIdentityCommand({}));

  expect(identity.Account).toBe(MEMBER);
  expect(identity.Arn).toBe(
    `arn:aws:sts::${MEMBER}:assumed-role/iam-key-rotation-member/2026-12-03T06-00-00.000Z`,
  );
  const session = await credentials();
  expect(session.accountId).toBe(MEMBER);
  expect(session.accessKeyId).toMatch(/^ASIA/);
  expect(session.expiration.getTime()).toBeGreaterThan(Date.now() + 55 * 60_000);
});

test('IAM calls with the session act in the member account, and the central account is untouched', async () => {
  await central.send(new CreateUserCommand({ UserName: 'central-user' }));
  await memberIam.send(new CreateUserCommand({ UserName: 'member-user' }));

  expect(await userNames(central)).toEqual(['central-user']);
  expect(await userNames(memberIam)).toEqual(['member-user']);
  // The production adapter, built for the member account with nothing but `credentials`.
  const memberDirectory = new IamAdapter(memberIam, memberCreate);
  await expect(memberDirectory.getUser('member-user')).resolves.toMatchObject({
    arn: `arn:aws:iam::${MEMBER}:user/member-user`,
  });
  await expect(new IamAdapter(central, central).getUser('central-user')).resolves.toMatchObject({
    arn: `arn:aws:iam::${ACCOUNT}:user/central-user`,
  });
});

test('the clients of one account share one session', async () => {
  const first = await credentials();
  const again = await members.forAccount(MEMBER, RUN_ID)();

  expect(again).toBe(first);
});
