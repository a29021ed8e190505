import { redisUrl } from '../support/redis.ts';
import { describeWorkerScripts } from './worker-scripts.suite.ts';

describeWorkerScripts('standalone', () => ({ redisUrl: redisUrl() }));
