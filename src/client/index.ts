/**
 * `strata/client`: the producer SDK. It talks to a running Strata over the HTTP API only, so it imports
 * nothing from the server side and a producer process loads none of it.
 */
export {
  StrataProducer,
  type ProducerStats,
  type PutError,
  type PutFailure,
  type PutResult,
  type PutSuccess,
  type StrataProducerOptions,
} from './producer.js';
