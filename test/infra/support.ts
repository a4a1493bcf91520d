/** Helpers for the infrastructure tests: synthesize the stack, read its IAM statements. */
import { App, CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { KeyRotationStack } from '../../lib/key-rotation-stack';
import type { KeyRotationProps } from '../../lib/constructs/key-rotation';

export interface Synthesized {
  readonly stack: KeyRotationStack;
  readonly template: Template;
  /** The logical id of a construct's CloudFormation resource (its default child, or itself). */
  readonly id: (construct: IConstruct) => string;
}

/**
 * Synthesizes a stack. Bundling (esbuild) is skipped unless asked for: the Template assertions do not
 * need the code, and skipping keeps each synth well under a second.
 */
export function synthesize(rotation: KeyRotationProps = {}, { bundle = false } = {}): Synthesized {
  const app = new App(bundle ? {} : { context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new KeyRotationStack(app, 'Test', { rotation });
  const template = Template.fromStack(stack);
  const id = (construct: IConstruct): string => {
    const element = (construct.node.defaultChild ?? construct) as CfnElement;
    return Stack.of(element).getLogicalId(element);
  };
  return { stack, template, id };
}

/** CloudFormation intrinsics as flat strings, like cdk-nag prints them: `<Logical.Arn>`, `<AWS::Region>`. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node['Fn::Join'])) {
      const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
      return parts.map(flatten).join(delimiter);
    }
    if (Array.isArray(node['Fn::GetAtt'])) {
      const [resource, attribute] = node['Fn::GetAtt'] as [string, string];
      return `<${resource}.${attribute}>`;
    }
    if (typeof node.Ref === 'string') return `<${node.Ref}>`;
  }
  return JSON.stringify(value);
}

export interface Statement {
  readonly effect: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly conditions?: unknown;
}

interface RawStatement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function normalise(statement: RawStatement): Statement {
  return {
    effect: statement.Effect,
    actions: list(statement.Action).sort(),
    resources: list(statement.Resource).map(flatten).sort(),
    ...(statement.Condition ? { conditions: flattenDeep(statement.Condition) } : {}),
  };
}

/** Every string or intrinsic inside a value, flattened. */
export function flattenDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(flattenDeep);
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && (keys[0] === 'Fn::Join' || keys[0] === 'Fn::GetAtt' || keys[0] === 'Ref')) {
      return flatten(value);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, flattenDeep(v)]));
  }
  return value;
}

/**
 * Every statement a role gets: its inline policies and each AWS::IAM::Policy attached to it,
 * normalised (sorted actions and resources, intrinsics flattened), sorted for comparison.
 */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const resources = template.toJSON().Resources as Record<
    string,
    { Type: string; Properties: Record<string, unknown> }
  >;
  const role = resources[roleLogicalId];
  if (!role) throw new Error(`no role ${roleLogicalId}`);
  const documents: { Statement: RawStatement[] }[] = [];
  for (const policy of (role.Properties.Policies ?? []) as {
    PolicyDocument: { Statement: RawStatement[] };
  }[]) {
    documents.push(policy.PolicyDocument);
  }
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles = (resource.Properties.Roles ?? []) as { Ref?: string }[];
    if (roles.some((r) => r.Ref === roleLogicalId)) {
      documents.push(resource.Properties.PolicyDocument as { Statement: RawStatement[] });
    }
  }
  return sortStatements(documents.flatMap((document) => document.Statement.map(normalise)));
}

const sortKey = (s: Statement): string => `${s.effect} ${s.actions.join(',')} ${s.resources.join(',')}`;

/** Sorted actions and resources, statements in a stable order: for comparing with toEqual. */
export const sortStatements = (statements: Statement[]): Statement[] =>
  statements
    .map((s) => ({ ...s, actions: [...s.actions].sort(), resources: [...s.resources].sort() }))
    .sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
