"""Authentication of the gateway: API keys, the admin API, per-tenant limits and quotas.

`AuthMiddleware` authenticates every request and runs it inside
`services.common.tenancy.tenant_scope`; `admin.router` manages keys and limits;
`storage` counts each tenant's stored bytes against its quota.
"""
