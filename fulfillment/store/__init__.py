"""The store client: GraphQL documents and typed operations, the HTTP transport, and the rate-limit budget."""
