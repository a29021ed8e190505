import { redisUrl } from '../support/redis.ts';
import { describeJobEventsStore } from './job-events-store.suite.ts';

describeJobEventsStore('standalone', () => ({ redisUrl: redisUrl() }));
