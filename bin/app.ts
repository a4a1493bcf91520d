#!/usr/bin/env node
/** Composition root: one stack from `cdk.json` context, checked by cdk-nag (AwsSolutions). */
import { App, BootstraplessSynthesizer, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KeyRotationStack } from '../lib/key-rotation-stack';
import { KeyRotationMemberStack } from '../lib/key-rotation-member-stack';
import { KEY_ROTATION_MEMBER_DEFAULTS } from '../lib/constructs/key-rotation-member';
import type { KeyRotationProps } from '../lib/constructs/key-rotation';
import { resolveKeyRotationProps } from '../lib/constructs/key-rotation-props';

const CONFIG_KEY = 'keyRotation';
const STACK_NAME_KEY = 'stackName';
/**
 * `-c memberStack=true`: synthesize the member footprint as a plain stack (`<stackName>-member`)
 * instead of the central stack, for the accounts a service-managed StackSet never reaches (the
 * management account, and the central account when it is covered).
 */
const MEMBER_STACK_KEY = 'memberStack';
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

const app = new App();

/** A bad configuration is the user's to fix: say what, without a stack trace, and stop. */
function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

/** `keyRotation` comes from cdk.json as an object, or from `-c keyRotation='{...}'` as JSON text. */
function readConfig(raw: unknown): KeyRotationProps {
  let value: unknown = raw ?? {};
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch (error) {
      fail(
        `context "${CONFIG_KEY}" (cdk.json or -c) is not valid JSON: ${error instanceof Error ? error.message : String(error)}; write it as -c ${CONFIG_KEY}='{"rotateAfterDays": 80}'`,
      );
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(
      `context "${CONFIG_KEY}" (cdk.json or -c) must be an object of construct props, such as {"rotateAfterDays": 80}`,
    );
  }
  return value;
}

// A misspelt context key would otherwise be ignored and the defaults deployed without a word.
const contextKeys = Object.keys({ ...(app.node.getAllContext() as Record<string, unknown>) });
for (const key of contextKeys) {
  for (const expected of [CONFIG_KEY, STACK_NAME_KEY, MEMBER_STACK_KEY]) {
    if (key !== expected && key.toLowerCase() === expected.toLowerCase()) {
      fail(`context "${key}" is not read: did you mean "${expected}"?`);
    }
  }
}
const stackName = (app.node.tryGetContext(STACK_NAME_KEY) as unknown) ?? 'IamKeyRotation';
if (typeof stackName !== 'string' || !STACK_NAME.test(stackName)) {
  fail(
    `context "${STACK_NAME_KEY}" must be a CloudFormation stack name: a letter, then letters, digits or "-" (got ${JSON.stringify(stackName)})`,
  );
}
const rotation = readConfig(app.node.tryGetContext(CONFIG_KEY));
const memberStack = (app.node.tryGetContext(MEMBER_STACK_KEY) as unknown) ?? false;
if (memberStack !== true && memberStack !== false && memberStack !== 'true' && memberStack !== 'false') {
  fail(`context "${MEMBER_STACK_KEY}" must be true or false (got ${JSON.stringify(memberStack)})`);
}
try {
  if (memberStack === true || memberStack === 'true') {
    // The same configuration as the central stack's, so that role name, secret prefix and user
    // paths are those the central functions expect.
    const config = resolveKeyRotationProps(rotation);
    if (!config.organization) {
      fail(
        `context "${MEMBER_STACK_KEY}" needs "${CONFIG_KEY}.organization" (the organization id and settings of the central stack)`,
      );
    }
    new KeyRotationMemberStack(app, `${stackName}-member`, {
      // No assets and no bootstrap: deployable in an account that was never bootstrapped.
      synthesizer: new BootstraplessSynthesizer(),
      member: {
        organizationId: config.organization.organizationId,
        memberRoleName: config.organization.settings.memberRoleName,
        secretPrefix: config.secretPrefix,
        includePaths: config.settings.includePaths,
        excludePaths: config.settings.excludePaths,
        keyAliasName: KEY_ROTATION_MEMBER_DEFAULTS.keyAliasName,
        ...(config.organization.memberPermissionsBoundaryArn
          ? { permissionsBoundaryArn: config.organization.memberPermissionsBoundaryArn }
          : {}),
      },
    });
  } else {
    new KeyRotationStack(app, stackName, {
      rotation,
      description: 'iam-key-rotation: keeps IAM access keys young without breaking workloads',
    });
  }
} catch (error) {
  fail(
    `context "${CONFIG_KEY}" (cdk.json or -c) is invalid: ${error instanceof Error ? error.message : String(error)}`,
  );
}
// Acknowledged findings are also written into the templates (resource metadata `cdk_nag`), with their
// reasons, for auditors reading the deployed stack.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
app.synth();
