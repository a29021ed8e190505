import { redisUrl } from '../support/redis.ts';
import { describeLifecycleScripts } from './lifecycle-scripts.suite.ts';

describeLifecycleScripts('standalone', () => ({ redisUrl: redisUrl() }));
