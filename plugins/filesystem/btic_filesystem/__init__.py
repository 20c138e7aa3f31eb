"""btic destination plugin: a local directory or a network share (UNC path).

Settings follow the vendor's File System plugin: destination directory, file
name format, file name conflict handling, retention count and download format.

* :mod:`btic_filesystem.options` — the settings;
* :mod:`btic_filesystem.destination` — the hooks;
* :mod:`btic_filesystem.files` — writing a file that appears whole or not at all;
* :mod:`btic_filesystem.retention` — keeping the newest backups of a site.
"""

from btic_filesystem.destination import FileSystemDestination
from btic_filesystem.options import FileSystemOptions

__version__ = "1.0.0"

__all__ = ["FileSystemDestination", "FileSystemOptions", "__version__"]
