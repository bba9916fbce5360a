"""The staff console's own machinery: second factor, idle timeout, the supervisor's team actions.

The access rules every staff view uses live in recovery.staff_access.
"""
