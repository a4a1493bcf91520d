#!/usr/bin/env node
/** Composition root: one stack from `cdk.json` context, checked by cdk-nag (AwsSolutions). */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KeyRotationStack } from '../lib/key-rotation-stack';
import type { KeyRotationProps } from '../lib/constructs/key-rotation';

const app = new App();

/** `keyRotation` comes from cdk.json as an object, or from `-c keyRotation='{...}'` as JSON text. */
function readConfig(raw: unknown): KeyRotationProps {
  const value: unknown = typeof raw === 'string' ? JSON.parse(raw) : (raw ?? {});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('it must be an object of construct props, such as {"rotateAfterDays": 80}');
  }
  return value;
}
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'IamKeyRotation';
try {
  new KeyRotationStack(app, stackName, {
    rotation: readConfig(app.node.tryGetContext('keyRotation')),
    description: 'iam-key-rotation: keeps IAM access keys young without breaking workloads',
  });
} catch (error) {
  // A bad configuration is the user's to fix: say what, without a stack trace.
  console.error(
    `cdk.json context "keyRotation" is invalid: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
}
// Acknowledged findings are also written into the templates (resource metadata `cdk_nag`), with their
// reasons, for auditors reading the deployed stack.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
app.synth();
