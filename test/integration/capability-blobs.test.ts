import { redisUrl } from '../support/redis.ts';
import { describeCapabilityBlobs } from './capability-blobs.suite.ts';

describeCapabilityBlobs('standalone', () => ({ redisUrl: redisUrl() }));
