/** Pure scaling decisions: how many instances a function version should have now. */
export { decide, type ScalingPolicy, type ScalingStats, type ScalingDecision } from './scaler.js';
