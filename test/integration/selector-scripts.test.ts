import { redisUrl } from '../support/redis.ts';
import { describeSelectorScripts } from './selector-scripts.suite.ts';

describeSelectorScripts('standalone', () => ({ redisUrl: redisUrl() }));
