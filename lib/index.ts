/**
 * The construct library's public API (the package's `main`): the construct and its stack, the member
 * footprint and its stack, the settings with their defaults, and the contract constants the operator
 * CLI reads the deployed stack by.
 */
export {
  KeyRotation,
  DISPATCHER_TIMEOUT,
  MAX_RECEIVE_COUNT,
  PLANNER_TIMEOUT,
  ROTATOR_BATCH_SIZE,
  ROTATOR_TIMEOUT,
} from './constructs/key-rotation';
export {
  KEY_ROTATION_DEFAULTS,
  resolveKeyRotationProps,
  type KeyRotationEnvironment,
  type KeyRotationOrganizationProps,
  type KeyRotationProps,
  type ResolvedKeyRotationConfig,
  type ResolvedOrganizationConfig,
} from './constructs/key-rotation-props';
export {
  KeyRotationMember,
  KEY_ROTATION_MEMBER_DEFAULTS,
  MEMBER_STACK_OUTPUT,
  NO_OPERATOR_ROLES,
  type KeyRotationMemberProps,
} from './constructs/key-rotation-member';
export { KeyRotationStack, type KeyRotationStackProps } from './key-rotation-stack';
export {
  KeyRotationMemberStack,
  MEMBER_TEMPLATE_PARAMETER,
  type KeyRotationMemberStackProps,
  type MemberTemplateProps,
} from './key-rotation-member-stack';
export { DEFAULT_SETTINGS, type RotationSettings } from '../lambda/domain/settings';
export { ENV, METRIC, METRICS_NAMESPACE, SERVICE_NAME, STACK_OUTPUT } from '../lambda/contract';
