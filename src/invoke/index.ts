/** The dispatcher: the only way in to a function's instances. */
export { FunctionDispatcher, type DispatcherOptions, type InvokeRequest, type DispatcherStats } from './dispatcher.js';
export { Capacity, type CapacityMember } from './capacity.js';
