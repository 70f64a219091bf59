"""The OpenAPI 3.0 document of /api/v1/, written by hand: it is the published contract
(docs/api.md), so it changes only on purpose. Served at GET /api/v1/schema."""

from billing.choices import MEMBER_PURPOSES, LoanType, RefusalReason
from registry.choices import Category, IdType, NoticeMethod, SubjectRole, SubjectType
from registry.models import Entry


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


STRING = {"type": "string"}
DATE = {"type": "string", "format": "date", "example": "2026-03-05"}
DATE_TIME = {"type": "string", "format": "date-time"}
MONEY = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "12345.60"}
NULLABLE_DATE = {**DATE, "nullable": True}

_AUTH_ERRORS = {
    "401": _error("Unauthenticated"),
    "403": _error("Forbidden"),
    "429": _error("RateLimited"),
}

SUBJECT_PROPERTIES = {
    "id_type": {"type": "string", "enum": IdType.values},
    "id_number": {
        "type": "string",
        "description": "Validated for its type; full-width digits, spaces and a lower-case x are normalised.",
        "example": "110101199003077571",
    },
    "name": {"type": "string", "example": "张三"},
}

ENTRY_COLUMNS = {
    "subject_type": {"type": "string", "description": f"个人 / 企业 or {' / '.join(SubjectType.values)}"},
    "id_type": {"type": "string", "description": "Chinese name or code: " + ", ".join(IdType.values)},
    "id_number": STRING,
    "name": STRING,
    "phone": {"type": "string", "description": "Mainland mobile, 11 digits, optional +86."},
    "role": {"type": "string", "description": f"借款人 / 担保人 or {' / '.join(SubjectRole.values)}"},
    "contract_no": {"type": "string", "maxLength": 64, "description": "Unique per member: re-reporting a contract updates its entry."},
    "category": {"type": "string", "description": "Chinese name or code: " + ", ".join(Category.values)},
    "loan_amount": {"type": "string", "description": "CNY: 12345.6, 12,345.60, ¥12,345.60."},
    "overdue_amount": {"type": "string", "description": "Required for overdue, malicious_default, guarantor_default."},
    "delinquent_since": {"type": "string", "description": "Date; required for overdue, malicious_default."},
    "court_name": {"type": "string", "description": "Required for court_judgment."},
    "case_number": {"type": "string", "description": "Required for court_judgment, e.g. (2023)京0105执1234号."},
    "judgment_date": {"type": "string", "description": "Date; required for court_judgment."},
    "notified_on": {"type": "string", "description": "Date the subject was told; not in the future."},
    "notice_method": {"type": "string", "description": "Chinese name or code: " + ", ".join(NoticeMethod.values)},
    "settled_on": {"type": "string", "description": "Date; not in the future."},
    "remarks": {"type": "string", "maxLength": 500},
}

SCHEMA: dict = {
    "openapi": "3.0.3",
    "info": {
        "title": "小额贷款黑名单系统 API",
        "version": "1.0.0",
        "description": (
            "The JSON API for members' loan systems. Authenticate with `Authorization: Bearer "
            "<key>` (keys are created by a lender admin in the portal). Requests are "
            "rate-limited per key (a fixed one-minute window; 429 with Retry-After). Every "
            "error has the shape `{\"error\": {\"code\", \"message\", \"fields\"}}`; messages "
            "are in Chinese unless the request sends `Accept-Language: en`. Bad input never "
            "stores or bills anything."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerKey": []}],
    "paths": {
        "/schema": {
            "get": {
                "operationId": "schema",
                "summary": "This OpenAPI document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.0 document.")},
            }
        },
        "/consents": {
            "post": {
                "operationId": "consentUpload",
                "summary": "Upload a borrower's signed consent (授权书)",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": _ref("ConsentUpload")}},
                },
                "responses": {
                    "201": _json(_ref("Consent"), "The consent was stored."),
                    "400": _error("BadRequest"),
                    **_AUTH_ERRORS,
                    "413": _error("TooLarge"),
                },
            }
        },
        "/queries": {
            "post": {
                "operationId": "queryRun",
                "summary": "Query the register about one subject, with the subject's consent",
                "description": (
                    "Logged immutably and billed once (no fee when the name does not match the "
                    "subject on file). A refused query (403 with a refusal code) is neither "
                    "logged as a query nor billed."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("QueryRequest")}},
                },
                "responses": {
                    "201": _json(_ref("QueryResult"), "The query's result."),
                    "400": _error("BadRequest"),
                    "401": _error("Unauthenticated"),
                    "403": _error("Refused"),
                    "409": _error("Conflict"),
                    "413": _error("TooLarge"),
                    "429": _error("RateLimited"),
                },
            }
        },
        "/queries/{query_no}": {
            "get": {
                "operationId": "queryGet",
                "summary": "A past query of your institution",
                "parameters": [
                    {"name": "query_no", "in": "path", "required": True, "schema": {"type": "string", "example": "Q20261204K7M2XQ9A"}}
                ],
                "responses": {
                    "200": _json(_ref("QueryResult"), "The stored result."),
                    **_AUTH_ERRORS,
                    "404": _error("NotFound"),
                },
            }
        },
        "/batch-screenings": {
            "post": {
                "operationId": "batchScreen",
                "summary": "Screen up to 10,000 subjects for post-loan management",
                "description": (
                    "Each subject needs a post_loan consent of your institution for that same "
                    "subject. Each valid subject is logged as a query (channel `batch`) and "
                    "billed exactly once like a single query; refused and invalid subjects are "
                    "neither logged nor billed. Multi-lending indicators are computed as for a "
                    "single query (post-loan queries, including these, never count in them). A "
                    "subject listed twice is invalid the second time. More than 10,000 subjects: "
                    "413 and nothing is stored."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchRequest")}},
                },
                "responses": {
                    "201": _json(_ref("BatchResult"), "One result per subject, in the order sent."),
                    "400": _error("BadRequest"),
                    **_AUTH_ERRORS,
                    "409": _error("Conflict"),
                    "413": _error("TooLarge"),
                },
            }
        },
        "/entries": {
            "post": {
                "operationId": "entryReport",
                "summary": "Report one entry (fields as in the bulk report format)",
                "description": (
                    "Fields are the English column aliases of the bulk report format; unknown "
                    "fields are an error. A contract already on file (same contract number and "
                    "subject) is updated. The entry waits for review (pending_review)."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": _ref("EntryReport")}},
                },
                "responses": {
                    "201": _json(_ref("EntryReported"), "Reported."),
                    "400": _error("BadRequest"),
                    **_AUTH_ERRORS,
                    "409": _error("Conflict"),
                    "413": _error("TooLarge"),
                },
            },
            "get": {
                "operationId": "entryList",
                "summary": "Your institution's entries, newest first (masked identifiers)",
                "parameters": [
                    {"name": "contract_no", "in": "query", "schema": STRING, "description": "Only the entries of this contract."},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}, "description": "50 entries a page."},
                ],
                "responses": {
                    "200": _json(_ref("EntryPage"), "A page of entries."),
                    "400": _error("BadRequest"),
                    **_AUTH_ERRORS,
                },
            },
        },
    },
    "components": {
        "securitySchemes": {
            "bearerKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key of your institution, e.g. `bl_1a2b3c4d_…`.",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "fields"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "description": (
                                    "unauthenticated, invalid_key, member_suspended, rate_limited, "
                                    "malformed_json, malformed_request, invalid, forbidden, "
                                    "not_found, method_not_allowed, conflict, too_large, "
                                    "too_many_subjects, or a refusal code: "
                                    + ", ".join(RefusalReason.values)
                                ),
                            },
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "description": "A message per field; nested fields as application.amount.",
                            },
                        },
                    }
                },
            },
            "ConsentUpload": {
                "type": "object",
                "required": ["file", "id_type", "id_number", "name", "purposes", "signed_on", "expires_on"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "PDF, JPEG or PNG, checked by content."},
                    **SUBJECT_PROPERTIES,
                    "purposes": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(MEMBER_PURPOSES)},
                        "description": "Repeat the field, or send one comma-separated value.",
                    },
                    "signed_on": DATE,
                    "expires_on": DATE,
                },
            },
            "Consent": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "expires_on": DATE,
                    "purposes": {"type": "array", "items": {"type": "string", "enum": list(MEMBER_PURPOSES)}},
                },
            },
            "Application": {
                "type": "object",
                "required": ["amount", "loan_type", "applied_on"],
                "properties": {
                    "amount": {
                        "oneOf": [{"type": "string"}, {"type": "number"}],
                        "description": "CNY, greater than 0, at most 2 decimals, e.g. \"50000.00\".",
                    },
                    "loan_type": {"type": "string", "enum": LoanType.values},
                    "applied_on": DATE,
                },
            },
            "QueryRequest": {
                "type": "object",
                "required": ["id_type", "id_number", "name", "purpose", "consent_id"],
                "properties": {
                    **SUBJECT_PROPERTIES,
                    "purpose": {"type": "string", "enum": list(MEMBER_PURPOSES)},
                    "consent_id": {"type": "integer", "description": "A consent of your institution for this subject, valid today, covering the purpose."},
                    "application": {**_ref("Application"), "description": "Required for loan_approval."},
                },
            },
            "EntrySnapshot": {
                "type": "object",
                "description": "A live entry about the subject as returned by a query.",
                "properties": {
                    "id": {"type": "integer"},
                    "member": {"type": "string", "description": "The reporting institution."},
                    "role": {"type": "string", "enum": SubjectRole.values},
                    "category": {"type": "string", "enum": Category.values},
                    "category_label": STRING,
                    "status": {"type": "string", "enum": [str(s) for s in Entry.VISIBLE]},
                    "status_label": STRING,
                    "loan_amount": MONEY,
                    "overdue_amount": {**MONEY, "nullable": True},
                    "delinquent_since": NULLABLE_DATE,
                    "dpd_band": {"type": "string", "enum": ["", "1–30", "31–60", "61–90", "91–180", "180+"]},
                    "court_name": STRING,
                    "case_number": STRING,
                    "judgment_date": NULLABLE_DATE,
                    "settled_on": NULLABLE_DATE,
                    "reported_on": DATE,
                    "disputed": {"type": "boolean", "description": "存在异议: under dispute."},
                    "subject_statement": {"type": "string", "description": "本人声明, if any."},
                },
            },
            "Window": {
                "type": "object",
                "properties": {"queries": {"type": "integer"}, "institutions": {"type": "integer"}},
            },
            "MultiLending": {
                "type": "object",
                "description": "Member queries (other than post-loan) about the subject and the institutions that made them, per window in days.",
                "properties": {d: _ref("Window") for d in ("7", "30", "90", "180", "365")},
            },
            "RiskFactor": {
                "type": "object",
                "properties": {"code": STRING, "points": {"type": "integer"}, "text": STRING},
            },
            "QueryResult": {
                "type": "object",
                "properties": {
                    "query_no": STRING,
                    "queried_at": DATE_TIME,
                    "purpose": {"type": "string", "enum": list(MEMBER_PURPOSES)},
                    "channel": {"type": "string", "enum": ["api", "batch", "web", "counter"]},
                    "hit": {"type": "boolean"},
                    "name_matches": {"type": "boolean", "nullable": True, "description": "false: the name does not match the subject on file; nothing about the person is shown (entries empty, multi_lending null, risk_grade empty) and nothing is billed."},
                    "entries": {"type": "array", "items": _ref("EntrySnapshot")},
                    "multi_lending": {**_ref("MultiLending"), "nullable": True},
                    "risk_grade": {"type": "string", "enum": ["A", "B", "C", "D", "E", ""], "description": "Empty when the name does not match."},
                    "risk_factors": {"type": "array", "items": _ref("RiskFactor")},
                    "fee": MONEY,
                },
            },
            "BatchSubject": {
                "type": "object",
                "required": ["id_type", "id_number", "name", "consent_id"],
                "properties": {**SUBJECT_PROPERTIES, "consent_id": {"type": "integer"}},
            },
            "BatchRequest": {
                "type": "object",
                "required": ["purpose", "subjects"],
                "properties": {
                    "purpose": {"type": "string", "enum": ["post_loan"]},
                    "subjects": {"type": "array", "minItems": 1, "maxItems": 10000, "items": _ref("BatchSubject")},
                },
            },
            "BatchItem": {
                "type": "object",
                "description": "status ok: the fields of QueryResult; refused or invalid: error.",
                "required": ["index", "status"],
                "properties": {
                    "index": {"type": "integer", "description": "Position in the request, from 0."},
                    "status": {"type": "string", "enum": ["ok", "refused", "invalid"]},
                    "query_no": STRING,
                    "queried_at": DATE_TIME,
                    "hit": {"type": "boolean"},
                    "name_matches": {"type": "boolean", "nullable": True},
                    "entries": {"type": "array", "items": _ref("EntrySnapshot")},
                    "multi_lending": {**_ref("MultiLending"), "nullable": True},
                    "risk_grade": STRING,
                    "risk_factors": {"type": "array", "items": _ref("RiskFactor")},
                    "fee": MONEY,
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "description": "invalid, duplicate, or a refusal code."},
                            "message": STRING,
                            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    },
                },
            },
            "BatchResult": {
                "type": "object",
                "properties": {
                    "results": {"type": "array", "items": _ref("BatchItem")},
                    "summary": {
                        "type": "object",
                        "properties": {
                            "total": {"type": "integer"},
                            "ok": {"type": "integer"},
                            "refused": {"type": "integer"},
                            "invalid": {"type": "integer"},
                            "fee": MONEY,
                        },
                    },
                },
            },
            "EntryReport": {
                "type": "object",
                "required": ["subject_type", "id_type", "id_number", "name", "role", "contract_no", "category", "loan_amount", "notified_on", "notice_method"],
                "properties": {
                    **ENTRY_COLUMNS,
                    "evidence": {"type": "string", "format": "binary", "description": "PDF, JPEG or PNG; required unless a court case number is given."},
                },
            },
            "EntryReported": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {"type": "string", "enum": Entry.Status.values},
                    "outcome": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                },
            },
            "EntryListItem": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "contract_no": STRING,
                    "status": {"type": "string", "enum": Entry.Status.values},
                    "subject_type": {"type": "string", "enum": SubjectType.values},
                    "id_type": {"type": "string", "enum": IdType.values},
                    "id_number_masked": {"type": "string", "example": "110105********002X"},
                    "name_masked": {"type": "string", "example": "张*"},
                    "role": {"type": "string", "enum": SubjectRole.values},
                    "category": {"type": "string", "enum": Category.values},
                    "loan_amount": MONEY,
                    "overdue_amount": {**MONEY, "nullable": True},
                    "delinquent_since": NULLABLE_DATE,
                    "notified_on": DATE,
                    "settled_on": NULLABLE_DATE,
                    "submitted_at": DATE_TIME,
                    "disputed": {"type": "boolean"},
                    "return_reason": STRING,
                },
            },
            "EntryPage": {
                "type": "object",
                "properties": {
                    "results": {"type": "array", "items": _ref("EntryListItem")},
                    "page": {"type": "integer"},
                    "has_next": {"type": "boolean"},
                    "next": {"type": "string", "nullable": True},
                },
            },
        },
        "responses": {
            name: _json(_ref("Error"), description)
            for name, description in (
                ("BadRequest", "400: malformed JSON or multipart, or invalid fields (see fields)."),
                ("Unauthenticated", "401: no key, or a wrong or revoked key."),
                ("Forbidden", "403: the institution is suspended (member_suspended), or the key may not do this (forbidden)."),
                ("Refused", "403: the institution is suspended, or the query is refused for its consent: " + ", ".join(RefusalReason.values)),
                ("NotFound", "404: no such query of your institution (another institution's is not found either)."),
                ("Conflict", "409: a concurrent request changed the same data; retry."),
                ("TooLarge", "413: a file or body over the limit, or more than 10,000 subjects (too_many_subjects)."),
                ("RateLimited", "429: too many requests with this key; wait Retry-After seconds."),
            )
        },
    },
}
