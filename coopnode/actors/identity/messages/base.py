"""What every identity message shares: the base Struct, the text fields' bounds, and
`Done`, the reply of a step that has nothing more to say."""

from __future__ import annotations

from typing import Annotated

import msgspec

# Free text a request carries (an identifier, an address): 1,024 characters is far more
# than any real one, and keeps a hostile request from making the actor read megabytes.
Text = Annotated[str, msgspec.Meta(max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
BirthDate = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
]
# A password, a code or a session id, bounded like text.
Secret = Annotated[str, msgspec.Meta(max_length=1024)]
FlowId = Annotated[str, msgspec.Meta(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class IdentityMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The base of every request and reply between the front and the identity actor."""

    def __repr__(self) -> str:
        # Requests carry passwords, codes and session ids: print the kind only.
        return f"{type(self).__name__}(…)"


class Done(IdentityMessage, frozen=True, tag="done"):
    message: str
