/* openapi.h — the OpenAPI 3.1 document of the /v1 API (sdk/schema/openapi.json with the
 * ewtp/1 schema embedded), compiled in at build time (cmake/ewtp-embed-openapi.cmake), so
 * GET /v1/openapi.json serves it without reading a file. Immutable; any thread. */
#ifndef EWTP_OPENAPI_H
#define EWTP_OPENAPI_H

#include <stddef.h>

/* The document's bytes (UTF-8 JSON, NUL-terminated) and their length without the NUL. */
extern const char ewtp_openapi_json[];
extern const size_t ewtp_openapi_json_len;

#endif
