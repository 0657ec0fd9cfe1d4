"""The LLM layer (Django-free): one client for every role, versioned prompt files, typed outputs."""

from .client import CallRecord, CallStore, Completion, LLMClient, LLMError, LLMSettings, MemoryStore, settings_from
from .prompts import Prompt, PromptError, load

__all__ = ["CallRecord", "CallStore", "Completion", "LLMClient", "LLMError", "LLMSettings", "MemoryStore", "Prompt",
           "PromptError", "load", "settings_from"]
