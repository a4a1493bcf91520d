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

/** A CloudFormation template's parameter values, as a deployment would pass them. */
export type ParameterValues = Readonly<Record<string, string>>;

/**
 * Resolves the intrinsics a member template uses (Ref of parameters and AWS::Partition, Fn::Join,
 * Fn::If with Fn::Equals/Or/Not conditions) as CloudFormation would for the given parameter values.
 * A CommaDelimitedList parameter resolves to a list.
 */
export function resolveTemplateValue(
  template: {
    Parameters?: Record<string, { Type: string; Default?: string }>;
    Conditions?: Record<string, unknown>;
  },
  value: unknown,
  parameters: ParameterValues,
): unknown {
  const parameter = (name: string): unknown => {
    if (name === 'AWS::Partition') return 'aws';
    const declared = template.Parameters?.[name];
    const raw = parameters[name] ?? declared?.Default;
    if (declared === undefined || raw === undefined) throw new Error(`no value for parameter ${name}`);
    return declared.Type === 'CommaDelimitedList' ? raw.split(',') : raw;
  };
  const condition = (name: string): boolean => {
    const expression = template.Conditions?.[name];
    if (expression === undefined) throw new Error(`no condition ${name}`);
    return resolve(expression) as boolean;
  };
  const resolve = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(resolve);
    if (!node || typeof node !== 'object') return node;
    const entries = Object.entries(node);
    const [key, args] = entries[0] ?? [];
    if (entries.length === 1 && key === 'Ref') return parameter(args as string);
    if (entries.length === 1 && key === 'Fn::Join') {
      const [delimiter, parts] = args as [string, unknown];
      const resolved = resolve(parts) as unknown[];
      return resolved.flat().join(delimiter);
    }
    if (entries.length === 1 && key === 'Fn::If') {
      const [name, whenTrue, whenFalse] = args as [string, unknown, unknown];
      return resolve(condition(name) ? whenTrue : whenFalse);
    }
    if (entries.length === 1 && key === 'Fn::Equals') {
      const [a, b] = (args as unknown[]).map(resolve);
      return JSON.stringify(a) === JSON.stringify(b);
    }
    if (entries.length === 1 && key === 'Fn::Or') return (args as unknown[]).map(resolve).some(Boolean);
    if (entries.length === 1 && key === 'Fn::Not') return !(resolve((args as unknown[])[0]) as boolean);
    if (entries.length === 1 && key?.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${key}`);
    return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
  };
  return resolve(value);
}

/** An AssumeRole request as STS evaluates it against a role's trust policy. */
export interface AssumeRoleRequest {
  /** aws:PrincipalArn: the caller's role ARN (not its session's). */
  readonly principalArn: string;
  /** aws:PrincipalOrgID of the caller's account. */
  readonly principalOrgId: string;
  /** The SourceIdentity of the request, or the one the caller's session carries (it persists). */
  readonly sourceIdentity?: string;
  /** Session tags passed (or transitive ones carried): sts:TagSession is then needed too. */
  readonly sessionTags?: boolean;
}

interface TrustStatement {
  Effect: string;
  Principal?: { AWS?: string | string[] };
  Action: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/**
 * Whether a (resolved) trust policy lets the request assume the role: sts:AssumeRole, plus
 * sts:SetSourceIdentity with a source identity and sts:TagSession with tags, each allowed by a
 * statement whose principal and conditions match (StringEquals and ArnEquals, values ORed, a key
 * missing from the request fails). No Deny statements are expected.
 */
export function trustAllows(document: { Statement: TrustStatement[] }, request: AssumeRoleRequest): boolean {
  const account = /^arn:aws[a-z-]*:iam::(\d{12}):/.exec(request.principalArn)?.[1];
  const context: Record<string, string | undefined> = {
    'aws:PrincipalArn': request.principalArn,
    'aws:PrincipalOrgID': request.principalOrgId,
    'sts:SourceIdentity': request.sourceIdentity,
  };
  const principalMatches = (statement: TrustStatement): boolean =>
    list(statement.Principal?.AWS ?? []).some(
      (principal) => principal === request.principalArn || principal === `arn:aws:iam::${account}:root`,
    );
  const conditionsHold = (statement: TrustStatement): boolean =>
    Object.entries(statement.Condition ?? {}).every(([operator, keys]) => {
      if (operator !== 'StringEquals' && operator !== 'ArnEquals') {
        throw new Error(`unsupported condition operator ${operator}`);
      }
      return Object.entries(keys).every(([key, values]) => {
        const actual = context[key];
        return actual !== undefined && list(values).includes(actual);
      });
    });
  const allowed = (action: string): boolean =>
    document.Statement.some(
      (statement) =>
        statement.Effect === 'Allow' &&
        list(statement.Action).includes(action) &&
        principalMatches(statement) &&
        conditionsHold(statement),
    );
  const actions = [
    'sts:AssumeRole',
    ...(request.sourceIdentity !== undefined ? ['sts:SetSourceIdentity'] : []),
    ...(request.sessionTags ? ['sts:TagSession'] : []),
  ];
  return actions.every(allowed);
}
