/**
 * The emulator the integration tier talks to: moto's server on a free loopback port, started once per
 * run by the global setup. Test files find it through EMULATOR_URL and reset it before they start.
 */
export const EMULATOR_ENV = 'EMULATOR_URL';

export function emulatorUrl(): string {
  const url = process.env[EMULATOR_ENV];
  if (!url) throw new Error(`${EMULATOR_ENV} is not set: run the tier with npm run test:integration`);
  return url;
}

/** Wipes every resource the emulator holds (moto's reset API). */
export async function resetEmulator(): Promise<void> {
  const response = await fetch(`${emulatorUrl()}/moto-api/reset`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
}

/** The environment that points the AWS SDK (production code unchanged) at the emulator. */
export function awsEnvironment(): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: emulatorUrl(),
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    // The SDK's warning that Node 20 is old says nothing about the code under test.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/**
 * Whether IAM (moto's state, read straight from moto, never through a relay) issued `secretAccessKey`
 * for `accessKeyId`. moto's STS checks no signature, so a signed call proves only the key id; this
 * proves the secret. Compared here so that a failing expectation prints a boolean, never a secret.
 */
export async function issuedSecretMatches(accessKeyId: string, secretAccessKey: string): Promise<boolean> {
  const response = await fetch(`${emulatorUrl()}/moto-api/data.json`);
  if (!response.ok) throw new Error(`moto state read failed: HTTP ${response.status}`);
  const state = (await response.json()) as {
    iam?: { AccessKey?: { access_key_id?: string; secret_access_key?: string }[] };
  };
  const issued = (state.iam?.AccessKey ?? []).find((key) => key.access_key_id === accessKeyId);
  if (!issued) throw new Error(`IAM holds no access key ${accessKeyId}`);
  return issued.secret_access_key === secretAccessKey;
}
