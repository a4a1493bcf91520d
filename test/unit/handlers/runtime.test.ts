import { ENV } from '../../../lambda/contract';
import { ConfigError } from '../../../lambda/domain/errors';
import { loadRotatorConfig } from '../../../lambda/handlers/runtime';

const BASE = {
  [ENV.ledgerTableName]: 'ledger',
  [ENV.topicArn]: 'arn:aws:sns:eu-west-1:111122223333:notices',
  [ENV.secretPrefix]: 'iam-key-rotation',
  [ENV.kmsKeyArn]: 'arn:aws:kms:eu-west-1:111122223333:key/1234',
  [ENV.rotationSettings]: '{}',
};
const ROTATOR_ROLE = 'arn:aws:iam::111122223333:role/KeyRotation-RotatorRole-ABC123';

describe("the rotator's own role (exempt from the Deny in each secret's policy)", () => {
  test('is read from SERVICE_ROLE_ARN', () => {
    expect(loadRotatorConfig({ ...BASE, [ENV.serviceRoleArn]: ROTATOR_ROLE }).serviceRoleArn).toBe(
      ROTATOR_ROLE,
    );
  });

  test('is optional', () => {
    expect(loadRotatorConfig(BASE)).not.toHaveProperty('serviceRoleArn');
    expect(loadRotatorConfig({ ...BASE, [ENV.serviceRoleArn]: ' ' })).not.toHaveProperty('serviceRoleArn');
  });

  test('must be a role ARN: anything else would lock the rotator out of its secrets', () => {
    const load = () =>
      loadRotatorConfig({ ...BASE, [ENV.serviceRoleArn]: 'arn:aws:iam::111122223333:user/rotator' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`environment variable ${ENV.serviceRoleArn} must be the ARN of an IAM role`);
  });
});
