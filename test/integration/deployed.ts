/**
 * What `cdk synth` produced (cdk.out/): the template and the Lambda bundles. The integration tier
 * tests the deployed artefacts, so it needs a synth first (`.ci/run` runs it before the tiers).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROJECT_ROOT = join(__dirname, '..', '..');
export const CDK_OUT = join(PROJECT_ROOT, 'cdk.out');
export const STACK_NAME = 'IamKeyRotation';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Outputs?: Record<string, { readonly Value: unknown }>;
}

export function deployedTemplate(): CfnTemplate {
  const file = join(CDK_OUT, `${STACK_NAME}.template.json`);
  if (!existsSync(file)) {
    throw new Error(
      `${file} is missing: run \`npx cdk synth --no-notices --quiet\` before the integration tier`,
    );
  }
  return JSON.parse(readFileSync(file, 'utf8')) as CfnTemplate;
}

/** The single resource of a type whose logical id starts with `prefix` (e.g. KeyRotationLedger). */
export function resourceOf(template: CfnTemplate, type: string, prefix: string): [string, CfnResource] {
  const found = Object.entries(template.Resources).filter(
    ([id, resource]) => resource.Type === type && id.startsWith(prefix),
  );
  if (found.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${found.length}`);
  return found[0]!;
}

/** The directory of a function's bundle (its `aws:asset:path` metadata) and its environment. */
export function deployedFunction(
  template: CfnTemplate,
  prefix: 'KeyRotationPlanner' | 'KeyRotationRotator',
): { readonly bundleDir: string; readonly environment: Record<string, unknown> } {
  const [, resource] = resourceOf(template, 'AWS::Lambda::Function', prefix);
  const assetPath = resource.Metadata?.['aws:asset:path'];
  if (typeof assetPath !== 'string') throw new Error(`${prefix} has no asset path in the template`);
  const environment = (resource.Properties?.Environment as { Variables?: Record<string, unknown> })
    ?.Variables;
  return { bundleDir: join(CDK_OUT, assetPath), environment: environment ?? {} };
}
