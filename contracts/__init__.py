"""The wire contract of signhub (CONTRACT.md, version 1.1) as pydantic v2 models.

The one place message shapes live: the hub and the simulators import them, and the AsyncAPI
document is generated from them (`contracts.asyncapi`).
"""
