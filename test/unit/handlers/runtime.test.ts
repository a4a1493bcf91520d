import { ENV } from '../../../lambda/contract';
import { ConfigError } from '../../../lambda/domain/errors';
import { loadRotatorConfig } from '../../../lambda/handlers/runtime';

const ROTATOR_ROLE = 'arn:aws:iam::111122223333:role/KeyRotation-RotatorRole-ABC123';
const BASE: Record<string, string | undefined> = {
  [ENV.ledgerTableName]: 'ledger',
  [ENV.topicArn]: 'arn:aws:sns:eu-west-1:111122223333:notices',
  [ENV.secretPrefix]: 'iam-key-rotation',
  [ENV.kmsKeyArn]: 'arn:aws:kms:eu-west-1:111122223333:key/1234',
  [ENV.rotationSettings]: '{}',
  [ENV.serviceRoleArn]: ROTATOR_ROLE,
};

describe("the rotator's own role (exempt from the Deny in each secret's policy)", () => {
  test('is read from SERVICE_ROLE_ARN', () => {
    expect(loadRotatorConfig(BASE).serviceRoleArn).toBe(ROTATOR_ROLE);
  });

  test.each([
    ['missing', undefined],
    ['blank', ' '],
  ])('is required (%s): without it the rotator would write policies that deny itself', (_name, value) => {
    const load = () => loadRotatorConfig({ ...BASE, [ENV.serviceRoleArn]: value });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      `environment variable ${ENV.serviceRoleArn} is not set; the KeyRotation construct sets it`,
    );
  });

  test('must be a role ARN: anything else would lock the rotator out of its secrets', () => {
    const load = () =>
      loadRotatorConfig({ ...BASE, [ENV.serviceRoleArn]: 'arn:aws:iam::111122223333:user/rotator' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`environment variable ${ENV.serviceRoleArn} must be the ARN of an IAM role`);
  });
});

describe('the readers of every secret (SECRET_READER_ARNS)', () => {
  const APP_ROLE = 'arn:aws:iam::111122223333:role/apps/billing';
  const CI_USER = 'arn:aws:iam::111122223333:user/ci';

  test('are read from a JSON list of role and user ARNs', () => {
    const config = loadRotatorConfig({
      ...BASE,
      [ENV.secretReaderArns]: JSON.stringify([APP_ROLE, CI_USER]),
    });

    expect(config.readerArns).toEqual([APP_ROLE, CI_USER]);
  });

  test.each([
    ['unset', undefined],
    ['blank', ''],
    ['an empty list', '[]'],
  ])('are none when %s', (_name, value) => {
    expect(loadRotatorConfig({ ...BASE, [ENV.secretReaderArns]: value }).readerArns).toEqual([]);
  });

  test.each([
    [
      'not JSON',
      `${APP_ROLE} ${CI_USER}`,
      `environment variable ${ENV.secretReaderArns} must be a JSON list`,
    ],
    [
      'not a list',
      JSON.stringify(APP_ROLE),
      `environment variable ${ENV.secretReaderArns} must be a JSON list`,
    ],
    [
      'a list with something else than a role or user ARN',
      JSON.stringify([APP_ROLE, 'arn:aws:iam::111122223333:group/admins']),
      `environment variable ${ENV.secretReaderArns}[1] "arn:aws:iam::111122223333:group/admins" is not an IAM role or user ARN`,
    ],
  ])('%s is refused with the variable named', (_name, value, message) => {
    const load = () => loadRotatorConfig({ ...BASE, [ENV.secretReaderArns]: value });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });
});
