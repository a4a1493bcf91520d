import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { SnsNotifier } from '../../../lambda/adapters/sns';
import {
  ACCOUNT_NOTICE_USER,
  renderAccountUnreachableNotice,
  type AccountUnreachableFacts,
} from '../../../lambda/domain/notices';

const ACCOUNT = '111122223333';
const RUN = '2026-01-01T02:00:00.000Z';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/iam-key-rotation-member`;

const DENIED: AccountUnreachableFacts = {
  accountId: ACCOUNT,
  runId: RUN,
  roleArn: ROLE,
  error: {
    name: 'MemberRoleAccessDeniedError',
    message: `sts:AssumeRole ${ROLE} (account ${ACCOUNT}): not authorized`,
  },
  retryable: false,
  consecutiveFailures: 1,
};

describe('renderAccountUnreachableNotice', () => {
  test('names the account, the role, the error and what to check; for the operators', () => {
    // Act
    const notice = renderAccountUnreachableNotice(DENIED);

    // Assert
    expect(notice).toMatchObject({
      event: 'account.unreachable',
      accountId: ACCOUNT,
      userName: ACCOUNT_NOTICE_USER,
      owner: 'default',
      recipients: ['default'],
      toOperators: true,
      dedupeId: `account.unreachable/${ACCOUNT}/${RUN}`,
    });
    expect(notice.subject).toBe(`ACTION NEEDED: key rotation cannot reach account ${ACCOUNT}`);
    for (const fragment of [
      `account ${ACCOUNT}`,
      RUN,
      `Member role: ${ROLE}`,
      `MemberRoleAccessDeniedError: sts:AssumeRole ${ROLE}`,
      'StackSet',
      `the trust policy of ${ROLE}`,
      'sts:SetSourceIdentity',
      'SUSPENDED',
      'tried again in the next run',
    ]) {
      expect(notice.text).toContain(fragment);
    }
    expect(notice.text).not.toContain('in a row');
    expect(notice.details).toEqual({
      event: 'account.unreachable',
      accountId: ACCOUNT,
      runId: RUN,
      roleArn: ROLE,
      errorName: 'MemberRoleAccessDeniedError',
      errorMessage: DENIED.error.message,
      retryable: false,
      consecutiveFailures: 1,
    });
  });

  test('without a known role ARN, says "the member role" and gives null in details', () => {
    // Act
    const notice = renderAccountUnreachableNotice({
      ...DENIED,
      roleArn: undefined,
      error: { name: 'AccessDeniedError', message: 'iam:GenerateCredentialReport: not authorized' },
    });

    // Assert
    expect(notice.text).not.toContain('Member role:');
    expect(notice.text).toContain('the trust policy of the member role');
    expect(notice.text).toContain('AccessDeniedError: iam:GenerateCredentialReport: not authorized');
    expect(notice.details.roleArn).toBeNull();
  });

  test('a retryable failure says AWS may only have been busy; failures in a row are counted', () => {
    // Act
    const notice = renderAccountUnreachableNotice({
      ...DENIED,
      error: { name: 'MemberSessionUnavailableError', message: 'Rate exceeded' },
      retryable: true,
      consecutiveFailures: 3,
    });

    // Assert
    expect(notice.text).toContain('may only have been busy');
    expect(notice.text).toContain('failed 3 runs in a row');
    expect(notice.details).toMatchObject({ retryable: true, consecutiveFailures: 3 });
  });

  test('the subject stays under 100 characters (SNS e-mail subjects)', () => {
    expect(renderAccountUnreachableNotice(DENIED).subject.length).toBeLessThan(100);
  });
});

describe('the account notice through SNS', () => {
  const sns = mockClient(SNSClient);
  afterAll(() => sns.restore());

  test('is published to the notification and ops topics with non-empty attributes (SNS refuses empty ones)', async () => {
    // Arrange
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const notifier = new SnsNotifier(
      {
        topicArn: 'arn:aws:sns:eu-west-1:999999999999:notices',
        opsTopicArn: 'arn:aws:sns:eu-west-1:999999999999:ops',
      },
      new SNSClient({
        region: 'eu-west-1',
        maxAttempts: 1,
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      }),
    );

    // Act
    await notifier.publish(renderAccountUnreachableNotice(DENIED), []);

    // Assert
    const inputs = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    expect(inputs.map((input) => input.TopicArn)).toEqual([
      'arn:aws:sns:eu-west-1:999999999999:notices',
      'arn:aws:sns:eu-west-1:999999999999:ops',
    ]);
    for (const input of inputs) {
      expect(input.MessageAttributes).toMatchObject({
        event: { StringValue: 'account.unreachable' },
        accountId: { StringValue: ACCOUNT },
        userName: { StringValue: ACCOUNT_NOTICE_USER },
        owner: { StringValue: '["default"]' },
      });
      for (const attribute of Object.values(input.MessageAttributes ?? {})) {
        expect(attribute.StringValue?.length).toBeGreaterThan(0);
      }
    }
  });
});
