import { redisUrl } from '../support/redis.ts';
import { describeNodeHistory } from './node-history.suite.ts';

describeNodeHistory('standalone', () => ({ redisUrl: redisUrl() }));
