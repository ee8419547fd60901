"""HTTP layer: schemas, dependencies, error mapping and one router per resource."""
