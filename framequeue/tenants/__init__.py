"""Tenants and their keys: who a caller is (auth), the keys that say so (keys), how fast it may submit
(ratelimit). Pure rules and a thin key service; the job store keeps the rows, the API checks them."""
