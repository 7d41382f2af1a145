/** The AWS stack configuration the tests start from (a valid one: each test changes what it tests). */
export const NS = 'failover-aws';
export const BASE: Record<string, string> = {
  [`${NS}:name`]: 'payments',
  [`${NS}:primaryRegion`]: 'us-east-1',
  [`${NS}:standbyRegion`]: 'us-west-2',
  [`${NS}:zoneName`]: 'example.com',
  [`${NS}:recordName`]: 'payments-db.example.com',
  [`${NS}:masterPassword`]: 'Master-Password-0123',
  [`${NS}:operatorDbPassword`]: 'Operator-Password-0123456',
};
export const SECRET_KEYS = [`${NS}:masterPassword`, `${NS}:operatorDbPassword`];
