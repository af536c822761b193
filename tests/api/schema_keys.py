# schema_keys.py: the keys of a real REST answer that its OpenAPI schema does not describe, so an undocumented field fails a test.


def _resolve(doc, schema):
	while isinstance(schema, dict) and '$ref' in schema:
		node = doc
		for part in schema['$ref'].lstrip('#/').split('/'):
			node = node[part]
		schema = node
	return schema if isinstance(schema, dict) else {}


def _parts(doc, schema):
	"""The schema and every allOf/oneOf/anyOf branch under it, resolved."""
	schema = _resolve(doc, schema)
	out = [schema]
	for key in ('allOf', 'oneOf', 'anyOf'):
		for sub in schema.get(key, []):
			out += _parts(doc, sub)
	return out


def undocumented(doc, schema, value, where=''):
	"""Paths (a.b[].c) of object keys in value that schema neither names nor allows as additional properties."""
	parts = _parts(doc, schema)
	missing = []
	if isinstance(value, dict):
		props = {}
		free = None
		for p in parts:
			props.update(p.get('properties', {}))
			if p.get('additionalProperties') not in (None, False):
				free = p['additionalProperties']
		if not props and free is None:
			return []  # a free-form object (an event's data): its keys are not the schema's to name
		for k, v in value.items():
			if k in props:
				missing += undocumented(doc, props[k], v, f'{where}.{k}' if where else k)
			elif isinstance(free, dict):
				missing += undocumented(doc, free, v, f'{where}.{k}' if where else k)
			elif free is None:
				missing.append(f'{where}.{k}' if where else k)
	elif isinstance(value, list):
		items = next((p['items'] for p in parts if 'items' in p), None)
		if items is not None:
			for v in value:
				missing += undocumented(doc, items, v, where + '[]')
	return sorted(set(missing))


def response_schema(doc, path, method='get', status='200'):
	"""The JSON schema of an operation's answer, or None."""
	op = doc.get('paths', {}).get(path, {}).get(method, {})
	content = op.get('responses', {}).get(status, {}).get('content', {})
	return content.get('application/json', {}).get('schema')
