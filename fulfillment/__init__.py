"""The fulfillment service's core: the business of a 3PL serving Shopify stores, free of Flask and Celery."""
