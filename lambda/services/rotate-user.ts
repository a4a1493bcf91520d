/**
 * Rotating one user: the public entry point. The work itself is split along the protocol it
 * implements, one step per file, in ./rotation (start with rotation/index.ts).
 */
export {
  DEFAULT_ROTATION_OPTIONS,
  rotateUser,
  type PerformedAction,
  type RotateUserRequest,
  type RotationDeps,
  type RotationOptions,
  type UserOutcome,
} from './rotation';
