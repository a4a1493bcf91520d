/**
 * The member footprint as a service-managed CloudFormation StackSet: the KeyRotationMember construct
 * synthesized in a stack of its own (no assets, no bootstrap), whose template is the StackSet's body.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Aws, BootstraplessSynthesizer, Fn, Stack } from 'aws-cdk-lib';
import { CfnStackSet } from 'aws-cdk-lib/aws-cloudformation';
import { Construct } from 'constructs';
import type { OrganizationSettings } from '../../lambda/domain/organization';
import {
  KeyRotationMemberStack,
  MEMBER_TEMPLATE_PARAMETER,
  NO_OPERATOR_ROLES,
  type MemberTemplateProps,
} from '../key-rotation-member-stack';
import type { KeyRotationMember } from './key-rotation-member';

/** CloudFormation's limit on a TemplateBody passed inline (a StackSet's included). */
export const TEMPLATE_BODY_MAX_BYTES = 51_200;

export { MEMBER_TEMPLATE_PARAMETER, NO_OPERATOR_ROLES, type MemberTemplateProps };

/** The member template's stack, in an App of its own (for the StackSet's body, and for cdk-nag in tests). */
export interface MemberTemplateStack {
  /** The App of its own the stack is in. */
  readonly app: App;
  /** The member template's stack (a {@link KeyRotationMemberStack}). */
  readonly stack: Stack;
  /** The member construct in it. */
  readonly member: KeyRotationMember;
}

/**
 * Builds the member template's stack: KeyRotationMember with the central account and role ARNs as
 * parameters, synthesized without bootstrap resources or assets (a StackSet's template stands alone).
 */
export function memberTemplateStack(props: MemberTemplateProps, outdir?: string): MemberTemplateStack {
  const app = new App({
    ...(outdir ? { outdir } : {}),
    // An App inside another app's synthesis: never synthesized on its own at exit, no analytics,
    // stack traces or path metadata in the template (they would only weigh on the 51,200 bytes).
    autoSynth: false,
    analyticsReporting: false,
    stackTraces: false,
    treeMetadata: false,
    postCliContext: { 'aws:cdk:enable-path-metadata': false },
  });
  const stack = new KeyRotationMemberStack(app, 'KeyRotationMember', {
    synthesizer: new BootstraplessSynthesizer(),
    member: props,
  });
  const { member } = stack;
  return { app, stack, member };
}

/** The member template (CloudFormation JSON) for the given props: the StackSet's body, or a plain stack's. */
export function memberTemplate(props: MemberTemplateProps): Record<string, unknown> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'key-rotation-member-'));
  try {
    const { app, stack } = memberTemplateStack(props, outdir);
    return app.synth().getStackByName(stack.stackName).template as Record<string, unknown>;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * The OperatorRoleArns parameter's value for a list of operator roles: the ARNs joined with commas,
 * or `none` (a StackSet refuses an empty parameter value).
 */
export function memberOperatorRoleArnsValue(operatorRoleArns: readonly string[]): string {
  return operatorRoleArns.length > 0 ? Fn.join(',', [...operatorRoleArns]) : NO_OPERATOR_ROLES;
}

/** Props of {@link MemberStackSet}. */
export interface MemberStackSetProps {
  /**
   * The member template's props (organization id, role name, secret prefix, user paths), fixed in
   * the template body. Required.
   */
  readonly member: MemberTemplateProps;
  /**
   * The central functions' roles the member role trusts as the service (tokens are fine: they become
   * a parameter, joined with commas). Required.
   */
  readonly centralRoleArns: readonly string[];
  /**
   * The central roles operators assume the member role with (the secret admin role). Required; an
   * empty list (no operator role) is passed as `none`.
   */
  readonly operatorRoleArns: readonly string[];
  /**
   * Deployment targets (includeOus) and callAs. Excluded accounts and OUs are not filtered out: they
   * keep the member role (see MemberStackSet). Required.
   */
  readonly organization: Pick<OrganizationSettings, 'includeOus' | 'callAs'>;
  /**
   * Name of the StackSet.
   * @default `<stack name>-member`
   */
  readonly stackSetName?: string;
}

/**
 * A service-managed StackSet of the member template, deployed to every account under the given OUs
 * in the central stack's region, and to accounts that join those OUs later (automatic deployment).
 *
 * The member footprint stays in an account that leaves the selection, until the service has
 * finished its work there: a rotation in flight may hold an active new key whose secret is not
 * stored yet (I1), and only the member role lets the finish-only pass and the rotator reach it.
 * - Accounts in `excludeAccounts` (like those under `excludeOus`) are not filtered out of the
 *   deployment targets: an exclusion only tells the dispatcher not to plan them (beyond the
 *   finish-only pass), so the same deploy that excludes an account does not delete its role.
 * - An account moved out of the target OUs keeps its stack (`RetainStacksOnAccountRemoval`): the
 *   StackSet drops only the stack instance, the stack (role and key) stays in the account.
 * Once the account is recorded `left`, operators may delete that stack (or the stack instance) by hand.
 *
 * Deleting the StackSet (or the central stack) deletes its stack instances first (the member keys
 * are retained by their own deletion policy).
 */
export class MemberStackSet extends Construct {
  readonly stackSet: CfnStackSet;
  /** The template body, as deployed. */
  readonly templateBody: string;

  constructor(scope: Construct, id: string, props: MemberStackSetProps) {
    super(scope, id);
    const { organization } = props;
    this.templateBody = JSON.stringify(memberTemplate(props.member));
    if (Buffer.byteLength(this.templateBody, 'utf8') > TEMPLATE_BODY_MAX_BYTES) {
      throw new Error(
        `MemberStackSet: the member template is ${Buffer.byteLength(this.templateBody, 'utf8')} bytes, over CloudFormation's TemplateBody limit of ${TEMPLATE_BODY_MAX_BYTES}`,
      );
    }
    this.stackSet = new CfnStackSet(this, 'Resource', {
      stackSetName: props.stackSetName ?? `${Stack.of(this).stackName}-member`,
      description:
        'iam-key-rotation member footprint: the role the central functions assume, and the account key for secrets',
      permissionModel: 'SERVICE_MANAGED',
      callAs: organization.callAs,
      // An account moved out of the target OUs keeps its stack: our unfinished work there needs the role.
      autoDeployment: { enabled: true, retainStacksOnAccountRemoval: true },
      capabilities: ['CAPABILITY_NAMED_IAM'],
      // Non-conflicting operations run at once; conflicting ones are queued instead of failing.
      managedExecution: { Active: true },
      operationPreferences: {
        // A quarter of the accounts at a time; stop once a tenth of them failed.
        maxConcurrentPercentage: 25,
        failureTolerancePercentage: 10,
      },
      parameters: [
        { parameterKey: MEMBER_TEMPLATE_PARAMETER.centralAccountId, parameterValue: Aws.ACCOUNT_ID },
        {
          parameterKey: MEMBER_TEMPLATE_PARAMETER.centralRoleArns,
          parameterValue: Fn.join(',', [...props.centralRoleArns]),
        },
        {
          parameterKey: MEMBER_TEMPLATE_PARAMETER.operatorRoleArns,
          parameterValue: memberOperatorRoleArnsValue(props.operatorRoleArns),
        },
      ],
      stackInstancesGroup: [
        {
          // Every account under the OUs, excluded ones too (no account filter): see above.
          deploymentTargets: { organizationalUnitIds: [...organization.includeOus] },
          // IAM is global; the member key and the secrets are regional: the central stack's region.
          regions: [Aws.REGION],
        },
      ],
      templateBody: this.templateBody,
    });
  }
}
