"""Pictures for people: the overview, the contact sheet, the change picture and their drawing helpers."""
