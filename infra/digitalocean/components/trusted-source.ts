/** A DigitalOcean database firewall rule, shared by the stack config and the database component. */
import { z } from 'zod';

/** A database firewall rule (a "trusted source" in the control panel). */
export const trustedSource = z.object({
  type: z.enum(['ip_addr', 'droplet', 'k8s', 'tag', 'app'], {
    error: 'must be ip_addr, droplet, k8s, tag or app',
  }),
  value: z.string().min(1).max(255),
});

export type TrustedSource = z.infer<typeof trustedSource>;
