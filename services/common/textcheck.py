"""Request text checks every gRPC service applies before its handler runs."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.common.errors import InvalidArgument


def reject_nul(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument naming the first string field holding a NUL character.

    PostgreSQL text cannot store NUL, so it is refused at the door, before any work
    (or any write) happens. Bytes fields (file contents) are not text and are skipped.
    """
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check(key, f"{name}[{key!r}]")
                if isinstance(item, Message):
                    reject_nul(item, f"{name}[{key!r}].")
                else:
                    _check(item, f"{name}[{key!r}]")
            continue
        repeated = _is_repeated(field)
        items = list(value) if repeated else [value]
        for index, item in enumerate(items):
            where = f"{name}[{index}]" if repeated else name
            if field.type == FieldDescriptor.TYPE_STRING:
                _check(item, where)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                reject_nul(item, f"{where}.")


def _is_repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _check(value: object, where: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidArgument(f"{where}: must not contain NUL characters", field=where)
