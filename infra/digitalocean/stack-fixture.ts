/** The DigitalOcean stack configuration the tests start from (a valid one: each test changes what it tests). */
export const NS = 'failover-digitalocean';
export const BASE: Record<string, string> = {
  [`${NS}:name`]: 'shop',
  [`${NS}:primaryRegion`]: 'ams3',
  [`${NS}:standbyRegion`]: 'nyc3',
  [`${NS}:zoneName`]: 'example.com',
  [`${NS}:recordName`]: 'shop-db.example.com',
  [`${NS}:trustedSources`]: JSON.stringify([
    { type: 'k8s', value: 'ff2a6c52-5a44-4b63-b99c-0e98e7a63d61' },
    { type: 'ip_addr', value: '192.0.2.10' },
  ]),
};
