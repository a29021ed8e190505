import { redisUrl } from '../support/redis.ts';
import { describeGatewayScripts } from './lua-scripts.suite.ts';

describeGatewayScripts('standalone', () => ({ redisUrl: redisUrl() }));
