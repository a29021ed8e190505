import { redisUrl } from '../support/redis.ts';
import { describeJobWaits } from './job-waits.suite.ts';

describeJobWaits('standalone', () => ({ redisUrl: redisUrl() }));
