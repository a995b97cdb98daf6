/**
 * Function instances: spawn, init handshake, invoke, limits. Knows nothing of HTTP.
 */
export { WarmPool, canUsePool, type PoolRuntime } from './pool.js';
export { Instance, spawnRuntime, type RuntimeProcess, type InstanceLaunch, type InstanceAnswer, type InstanceRequest, type InitResult } from './instance.js';
export { detectLimitEnforcer, rssSampling, POOL_MEMORY_MB, type LimitEnforcer, type InstanceLimits, type PreparedLimits } from './limits.js';
export {
  detectHostRuntimes, runtimeVersionWarning, launchFor, poolRuntimeFor, runtimeReadPaths, prepareModule, functionArn, instanceEnvironment,
  packageRoot, type HostRuntimes,
} from './runtimes.js';
export { encodeFrame, FrameReader, FrameType } from './protocol.js';
export { BootGate, bootGate, DEFAULT_BOOT_CONCURRENCY } from './gate.js';
export { detectIsolation, NO_ISOLATION, SANDBOX_TASK_ROOT, readableByOthers, type Isolation } from './isolation.js';
